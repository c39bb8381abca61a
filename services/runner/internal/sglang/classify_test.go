package sglang

import "testing"

func TestLastException(t *testing.T) {
	tests := []struct {
		name, tail, want string
	}{
		{"assertion", "Traceback (most recent call last):\n  File \"x.py\", line 1\nAssertionError: Pipeline parallelism is not compatible with overlap schedule.\n", "AssertionError: Pipeline parallelism is not compatible with overlap schedule."},
		{"prefixed", "loading\nsgtune sim: RuntimeError: CUDA error: invalid device ordinal\n\n", "RuntimeError: CUDA error: invalid device ordinal"},
		{"dotted", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"},
		{"bare", "KeyboardInterrupt\n", "KeyboardInterrupt"},
		{"none", "Load weight begin\nserver exited\n", ""},
	}
	for _, tt := range tests {
		if got := LastException(tt.tail); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
