package sim

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var errStopping = errors.New("server stopping")

func (s *server) newRID() string {
	s.rngMu.Lock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	s.rngMu.Unlock()
	return fmt.Sprintf("%016x%016x", a, b)
}

// newRequests builds the per-prompt requests of one HTTP request.
func (s *server) newRequests(toks [][]int32, rids []string, maxNew int, ignoreEOS bool, arrival time.Time) []*request {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	out := make([]*request, len(toks))
	for i, p := range toks {
		out[i] = newRequest(s, rids[i], p, maxNew, ignoreEOS, arrival, s.rng)
		out[i].index = i
	}
	return out
}

// submit hands a request to a replica (round robin, like SGLang's default
// load_balance_method) and applies request-count faults.
func (s *server) submit(q *request) {
	n := s.nreq.Add(1)
	switch {
	case s.env.fault == FaultOOMUnderLoad && n >= int64(s.env.faultAfter):
		le := s.plan.RuntimeOOM(s.plan.Config.ChunkedPrefillSize, 64)
		s.printSchedulerTraceback(le)
		s.die(le)
	case s.env.fault == FaultHangDuringBench && n >= int64(s.env.faultAfter):
		s.hung.Store(true)
	}
	if q.maxNew == 0 {
		q.publish(0, 0, true, time.Now())
		return
	}
	reps := s.reps()
	rep := reps[int((s.rr.Add(1)-1)%uint64(len(reps)))]
	q.rep = rep
	select {
	case rep.in <- q:
	case <-s.stop:
	}
}

func (s *server) cancel(q *request) {
	if q.done.Load() || q.rep == nil {
		return
	}
	q.aborted.Store(true)
	select {
	case q.rep.aborts <- q:
	default:
	}
}

// wait blocks until the request has tokens to emit per the stream interval
// (or is done) and returns the visible count. interval 0 waits for the end.
func (s *server) wait(ctx context.Context, q *request, sent, interval int) (int, bool, error) {
	for {
		done := q.done.Load()
		g := int(q.gen.Load())
		if done {
			return g, true, nil
		}
		if interval > 0 && g > sent && (sent == 0 || g/interval > sent/interval) {
			return g, false, nil
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			s.cancel(q)
			return 0, false, ctx.Err()
		case <-s.stop:
			return 0, false, errStopping
		}
	}
}
