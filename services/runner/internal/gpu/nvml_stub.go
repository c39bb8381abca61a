//go:build !nvml

package gpu

// NVMLCompiled reports whether this binary was built with NVML support.
const NVMLCompiled = false

// OpenNVML always fails in this build: NVML is not compiled in (build with
// -tags nvml and cgo on a GPU host).
func OpenNVML() (Inventory, func(), error) {
	return nil, func() {}, ErrNVMLUnavailable
}
