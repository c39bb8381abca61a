package sglang

import (
	"os"
	"testing"

	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
)

func TestMain(m *testing.M) {
	if fakeserver.Enabled() {
		os.Exit(fakeserver.Main())
	}
	os.Exit(m.Run())
}
