//go:build !nvml

package gpu

// NVMLCompiled reports whether this binary was built with NVML support.
const NVMLCompiled = false

// OpenNVML always fails in this build: NVML is not compiled in (make build
// on a host with a C compiler, or make build-nvml, compiles it in).
func OpenNVML() (Inventory, func(), error) {
	return nil, func() {}, ErrNVMLUnavailable
}
