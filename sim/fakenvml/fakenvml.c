/*
 * fakenvml: a stand-in for the NVIDIA driver's libnvidia-ml.so.1, so that an
 * NVML-enabled sgtune (go-nvml dlopens "libnvidia-ml.so.1" at run time) runs
 * whole studies through its real NVML code path on a machine without a GPU.
 *
 * It presents a host of GPUs configured by the environment:
 *   SGTUNE_FAKE_NVML_GPUS     number of GPUs (default 4, at most 16)
 *   SGTUNE_FAKE_NVML_MODEL    GPU model, or a comma-separated model per GPU
 *                             (cycled): H100 (default), H200, A100-80G,
 *                             A100-40G, L40S, A10, B200 (the names of
 *                             pkg/study's GPU table)
 *   SGTUNE_FAKE_NVML_HOST_ID  0-65535, part of every UUID (default 0), so two
 *                             fake hosts have different GPUs
 *   SGTUNE_FAKE_NVML_DRIVER   driver version (default 550.54.15)
 *   SGTUNE_FAKE_NVML_CUDA     CUDA driver version as NVML encodes it (12040)
 *   SGTUNE_FAKE_NVML_DIR      state directory (optional; without it the GPUs
 *                             are idle forever)
 *
 * GPU i has UUID GPU-fa4e<host id, 4 hex>-0000-4000-8000-<i, 12 digits> and
 * PCI bus id 00000000:<0x18 + 0x10 i>:00.0; NVML index order is PCI order.
 *
 * Memory use, utilisation, power and energy are driven by sglang-sim
 * (sim/gpustate.go): a simulated server writes one hold file per GPU it uses,
 * DIR/holds/gpu<i>.<pid>, of "key value" lines:
 *   mem_bytes N   memory it holds on the GPU
 *   util_pct N    percent of the last interval it kept the GPU busy
 *   busy_ms N     busy time so far (the integral of util_pct)
 *   end_ms N      0 while it runs; after it stopped, the wall-clock time
 *                 (Unix ms) until which its memory stays allocated (a late
 *                 release; equal to the stop time for a prompt one)
 * A hold counts while its process lives (and end_ms is 0) or until end_ms;
 * a killed process's memory is released at once, as the driver does.
 * Power is idle + (TDP - idle) x utilisation; the energy counter is idle
 * power x time since boot plus (TDP - idle) x every hold's busy time, so it
 * only grows. While DIR/driver-unloaded exists every call (nvmlInit too)
 * fails with NVML_ERROR_DRIVER_NOT_LOADED: a driver reload mid-study.
 *
 * Only the entry points go-nvml resolves for what sgtune calls are here
 * (go-nvml binds them lazily: a missing one aborts the process when called,
 * and versioned ones are looked up with dlsym at init).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_DRIVER_NOT_LOADED = 9,
	NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
	NVML_ERROR_UNKNOWN = 999,
};

typedef struct {
	unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
	unsigned int version;
	unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
	unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct {
	char busIdLegacy[16];
	unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} nvmlPciInfo_t;

#define MAX_GPUS 16
#define GIB (1ULL << 30)

struct model {
	const char *key, *name;
	unsigned long long memory;
	int cc_major, cc_minor;
	unsigned int idle_mw, tdp_mw;
	unsigned int pci_device_id;
};

/* The names and memory sizes are pkg/study's GPU table (what NVML reports). */
static const struct model models[] = {
	{"H100", "NVIDIA H100 80GB HBM3", 80 * GIB, 9, 0, 70000, 700000, 0x233010de},
	{"H200", "NVIDIA H200", 141 * GIB, 9, 0, 75000, 700000, 0x233510de},
	{"A100-80G", "NVIDIA A100-SXM4-80GB", 80 * GIB, 8, 0, 55000, 400000, 0x20b210de},
	{"A100-40G", "NVIDIA A100-SXM4-40GB", 40 * GIB, 8, 0, 50000, 400000, 0x20b010de},
	{"L40S", "NVIDIA L40S", 48 * GIB, 8, 9, 35000, 350000, 0x26b910de},
	{"A10", "NVIDIA A10", 24 * GIB, 8, 6, 20000, 150000, 0x223610de},
	{"B200", "NVIDIA B200", 180 * GIB, 10, 0, 140000, 1000000, 0x290110de},
};

struct nvmlDevice_st {
	unsigned int index;
	const struct model *model;
	char uuid[96];
	char bus_id[32];
	unsigned int bus;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int refs;
static unsigned int ngpus;
static struct nvmlDevice_st devs[MAX_GPUS];
static char state_dir[4096];
static char driver_version[80] = "550.54.15";
static int cuda_version = 12040;

static const struct model *find_model(const char *key, size_t n) {
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		if (strlen(models[i].key) == n && strncasecmp(models[i].key, key, n) == 0)
			return &models[i];
	}
	return NULL;
}

static int driver_unloaded(void) {
	if (!state_dir[0])
		return 0;
	char path[4200];
	snprintf(path, sizeof(path), "%s/driver-unloaded", state_dir);
	return access(path, F_OK) == 0;
}

/* configure reads the environment; it returns an NVML error for a bad one
 * (and says why on stderr, as a misconfigured test should). */
static nvmlReturn_t configure(void) {
	const char *v = getenv("SGTUNE_FAKE_NVML_GPUS");
	ngpus = 4;
	if (v && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > MAX_GPUS) {
			fprintf(stderr, "fakenvml: SGTUNE_FAKE_NVML_GPUS=%s: want 1 to %d\n", v, MAX_GPUS);
			return NVML_ERROR_INVALID_ARGUMENT;
		}
		ngpus = (unsigned int)n;
	}
	const char *spec = getenv("SGTUNE_FAKE_NVML_MODEL");
	if (!spec || !*spec)
		spec = "H100";
	const struct model *per[MAX_GPUS];
	unsigned int nper = 0;
	for (const char *p = spec; *p && nper < MAX_GPUS;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const struct model *m = find_model(p, n);
		if (!m) {
			fprintf(stderr, "fakenvml: SGTUNE_FAKE_NVML_MODEL=%s: unknown model %.*s\n", spec, (int)n, p);
			return NVML_ERROR_INVALID_ARGUMENT;
		}
		per[nper++] = m;
		p += n + (comma ? 1 : 0);
	}
	if (nper == 0)
		per[nper++] = &models[0];
	unsigned long host = 0;
	if ((v = getenv("SGTUNE_FAKE_NVML_HOST_ID")) && *v)
		host = strtoul(v, NULL, 0) & 0xffff;
	if ((v = getenv("SGTUNE_FAKE_NVML_DRIVER")) && *v)
		snprintf(driver_version, sizeof(driver_version), "%s", v);
	if ((v = getenv("SGTUNE_FAKE_NVML_CUDA")) && *v)
		cuda_version = atoi(v);
	state_dir[0] = 0;
	if ((v = getenv("SGTUNE_FAKE_NVML_DIR")) && *v)
		snprintf(state_dir, sizeof(state_dir), "%s", v);
	for (unsigned int i = 0; i < ngpus; i++) {
		struct nvmlDevice_st *d = &devs[i];
		d->index = i;
		d->model = per[i % nper];
		d->bus = 0x18 + 0x10 * i;
		snprintf(d->uuid, sizeof(d->uuid), "GPU-fa4e%04lx-0000-4000-8000-%012u", host, i);
		snprintf(d->bus_id, sizeof(d->bus_id), "00000000:%02X:00.0", d->bus & 0xff);
	}
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
	pthread_mutex_lock(&mu);
	nvmlReturn_t ret = NVML_SUCCESS;
	if (refs == 0)
		ret = configure();
	if (ret == NVML_SUCCESS && driver_unloaded())
		ret = NVML_ERROR_DRIVER_NOT_LOADED;
	if (ret == NVML_SUCCESS)
		refs++;
	pthread_mutex_unlock(&mu);
	return ret;
}

nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
	(void)flags;
	return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void) {
	pthread_mutex_lock(&mu);
	nvmlReturn_t ret = refs > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
	if (refs > 0)
		refs--;
	pthread_mutex_unlock(&mu);
	return ret;
}

const char *nvmlErrorString(nvmlReturn_t r) {
	switch (r) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
	default: return "Unknown Error";
	}
}

/* ready checks that NVML is initialised and the driver is there. */
static nvmlReturn_t ready(void) {
	pthread_mutex_lock(&mu);
	int r = refs;
	pthread_mutex_unlock(&mu);
	if (r == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (driver_unloaded())
		return NVML_ERROR_DRIVER_NOT_LOADED;
	return NVML_SUCCESS;
}

static nvmlReturn_t device_ok(nvmlDevice_t d) {
	nvmlReturn_t r = ready();
	if (r != NVML_SUCCESS)
		return r;
	if (d < devs || d >= devs + ngpus)
		return NVML_ERROR_INVALID_ARGUMENT;
	return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(char *dst, unsigned int len, const char *src) {
	if (!dst)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(src) + 1 > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(dst, src, strlen(src) + 1);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
	nvmlReturn_t r = ready();
	return r != NVML_SUCCESS ? r : copy_string(version, length, driver_version);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
	nvmlReturn_t r = ready();
	return r != NVML_SUCCESS ? r : copy_string(version, length, "12.550.54.15");
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
	if (!v)
		return NVML_ERROR_INVALID_ARGUMENT;
	nvmlReturn_t r = ready();
	if (r == NVML_SUCCESS)
		*v = cuda_version;
	return r;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return nvmlSystemGetCudaDriverVersion(v); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	nvmlReturn_t r = ready();
	if (r == NVML_SUCCESS)
		*count = ngpus;
	return r;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
	nvmlReturn_t r = ready();
	if (r != NVML_SUCCESS)
		return r;
	if (!device || index >= ngpus)
		return NVML_ERROR_INVALID_ARGUMENT;
	*device = &devs[index];
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
	return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
	nvmlReturn_t r = ready();
	if (r != NVML_SUCCESS)
		return r;
	if (!uuid || !device)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < ngpus; i++) {
		if (strcmp(devs[i].uuid, uuid) == 0) {
			*device = &devs[i];
			return NVML_SUCCESS;
		}
	}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device) {
	nvmlReturn_t r = ready();
	if (r != NVML_SUCCESS)
		return r;
	if (!bus_id || !device)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < ngpus; i++) {
		if (strcasecmp(devs[i].bus_id, bus_id) == 0) {
			*device = &devs[i];
			return NVML_SUCCESS;
		}
	}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !index)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r == NVML_SUCCESS)
		*index = d->index;
	return r;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor) { return nvmlDeviceGetIndex(d, minor); }

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
	nvmlReturn_t r = device_ok(d);
	return r != NVML_SUCCESS ? r : copy_string(name, length, d->model->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
	nvmlReturn_t r = device_ok(d);
	return r != NVML_SUCCESS ? r : copy_string(uuid, length, d->uuid);
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && (!major || !minor))
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r == NVML_SUCCESS) {
		*major = d->model->cc_major;
		*minor = d->model->cc_minor;
	}
	return r;
}

static void fill_pci(nvmlDevice_t d, nvmlPciInfo_t *p) {
	memset(p, 0, sizeof(*p));
	p->domain = 0;
	p->bus = d->bus;
	p->device = 0;
	p->pciDeviceId = d->model->pci_device_id;
	snprintf(p->busId, sizeof(p->busId), "%s", d->bus_id);
	snprintf(p->busIdLegacy, sizeof(p->busIdLegacy), "0000:%02X:00.0", d->bus & 0xff);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !pci)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r == NVML_SUCCESS)
		fill_pci(d, pci);
	return r;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(d, pci); }
nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t d, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(d, pci); }

/* The state the holds of one GPU add up to. */
struct gpu_state {
	unsigned long long mem;
	unsigned int util;
	unsigned long long busy_ms;
};

static unsigned long long now_ms(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
}

/* process_alive: the process exists and is not a zombie. */
static int process_alive(long pid) {
	if (pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static void read_state(unsigned int index, struct gpu_state *st) {
	memset(st, 0, sizeof(*st));
	if (!state_dir[0])
		return;
	char dir[4200], prefix[32];
	snprintf(dir, sizeof(dir), "%s/holds", state_dir);
	snprintf(prefix, sizeof(prefix), "gpu%u.", index);
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	unsigned long long wall = now_ms(CLOCK_REALTIME);
	struct dirent *e;
	while ((e = readdir(dp)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strchr(e->d_name + strlen(prefix), '.'))
			continue; /* not this GPU's, or a temporary file being written */
		long pid = strtol(e->d_name + strlen(prefix), NULL, 10);
		char path[4500];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		unsigned long long mem = 0, util = 0, busy = 0, end = 0, val;
		char key[64];
		while (fscanf(f, "%63s %llu", key, &val) == 2) {
			if (!strcmp(key, "mem_bytes"))
				mem = val;
			else if (!strcmp(key, "util_pct"))
				util = val;
			else if (!strcmp(key, "busy_ms"))
				busy = val;
			else if (!strcmp(key, "end_ms"))
				end = val;
		}
		fclose(f);
		st->busy_ms += busy;
		int live = end ? wall < end : process_alive(pid);
		if (live) {
			st->mem += mem;
			if (end == 0)
				st->util += (unsigned int)util;
		}
	}
	closedir(dp);
	if (st->util > 100)
		st->util = 100;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !m)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r != NVML_SUCCESS)
		return r;
	struct gpu_state st;
	pthread_mutex_lock(&mu);
	read_state(d->index, &st);
	pthread_mutex_unlock(&mu);
	unsigned long long total = d->model->memory;
	m->total = total;
	m->used = st.mem < total ? st.mem : total;
	m->free = total - m->used;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
	if (!m)
		return NVML_ERROR_INVALID_ARGUMENT;
	nvmlMemory_t v1;
	nvmlReturn_t r = nvmlDeviceGetMemoryInfo(d, &v1);
	if (r != NVML_SUCCESS)
		return r;
	m->total = v1.total;
	m->reserved = 0;
	m->used = v1.used;
	m->free = v1.free;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !u)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r != NVML_SUCCESS)
		return r;
	struct gpu_state st;
	pthread_mutex_lock(&mu);
	read_state(d->index, &st);
	pthread_mutex_unlock(&mu);
	u->gpu = st.util;
	u->memory = st.util / 2;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !mw)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r != NVML_SUCCESS)
		return r;
	struct gpu_state st;
	pthread_mutex_lock(&mu);
	read_state(d->index, &st);
	pthread_mutex_unlock(&mu);
	const struct model *m = d->model;
	*mw = m->idle_mw + (m->tdp_mw - m->idle_mw) / 100 * st.util;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !mw)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r == NVML_SUCCESS)
		*mw = d->model->tdp_mw;
	return r;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
	nvmlReturn_t r = device_ok(d);
	if (r == NVML_SUCCESS && !mj)
		r = NVML_ERROR_INVALID_ARGUMENT;
	if (r != NVML_SUCCESS)
		return r;
	struct gpu_state st;
	pthread_mutex_lock(&mu);
	read_state(d->index, &st);
	pthread_mutex_unlock(&mu);
	const struct model *m = d->model;
	/* mW x ms / 1000 = mJ */
	*mj = (unsigned long long)m->idle_mw * now_ms(CLOCK_BOOTTIME) / 1000ULL +
	      (unsigned long long)(m->tdp_mw - m->idle_mw) * st.busy_ms / 1000ULL;
	return NVML_SUCCESS;
}
