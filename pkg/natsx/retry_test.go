package natsx_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// Timeouts (a cluster forming its RAFT groups) are retried; anything else
// is returned at once.
func TestRetryTimeoutsRetriesTimeoutsOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errs    []error
		want    error
		wantRun int
	}{
		{"two timeouts then success", []error{context.DeadlineExceeded, nats.ErrTimeout, nil}, nil, 3},
		{"another error at once", []error{nats.ErrBadSubject, nil}, nats.ErrBadSubject, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			err := natsx.RetryTimeouts(context.Background(), func(context.Context) error {
				runs++
				return tc.errs[runs-1]
			})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || runs != tc.wantRun {
				t.Errorf("err %v after %d runs, want %v after %d", err, runs, tc.want, tc.wantRun)
			}
		})
	}
}
