package sim

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

// request is one generation request (one prompt) in flight.
type request struct {
	eng      model.Req // owned by the replica goroutine
	rep      *replica
	inEngine bool // replica goroutine only

	rid        string
	index      int // position in a batch request
	promptLen  int
	maxNew     int
	outLen     int // tokens it will generate (max_new_tokens with ignore_eos)
	stopByEOS  bool
	arrival    time.Time
	vocab      int
	tokenState uint64

	gen     atomic.Int64 // tokens visible to the handler
	cached  atomic.Int64 // prompt tokens served from the prefix cache
	done    atomic.Bool
	finish  atomic.Int64 // unix nanos of the last token
	aborted atomic.Bool
	wake    chan struct{}
}

func newRequest(s *server, rid string, prompt []int32, maxNew int, ignoreEOS bool, arrival time.Time, rng *rand.Rand) *request {
	q := &request{
		rid:        rid,
		promptLen:  len(prompt),
		maxNew:     maxNew,
		outLen:     maxNew,
		arrival:    arrival,
		vocab:      s.mdl.Vocab,
		tokenState: rng.Uint64() | 1,
		wake:       make(chan struct{}, 1),
	}
	if !ignoreEOS && maxNew > 1 && rng.Float64() < 0.3 {
		// Without ignore_eos the model sometimes stops early at EOS.
		q.outLen = 1 + rng.IntN(maxNew)
		q.stopByEOS = q.outLen < maxNew
	}
	q.eng = model.Req{InputLen: len(prompt), MaxNewTokens: maxNew, OutputLen: q.outLen, Tokens: prompt, Tag: q}
	return q
}

// publish is called by the replica when the request's tokens become
// visible, with the prompt tokens the prefix cache served so far.
func (q *request) publish(generated, cached int, finished bool, at time.Time) {
	q.cached.Store(int64(cached))
	q.gen.Store(int64(generated))
	if finished {
		q.finish.Store(at.UnixNano())
		q.done.Store(true)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// nextToken returns the next pseudo-random output token id (xorshift64*).
func (q *request) nextToken() int {
	x := q.tokenState
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	q.tokenState = x
	return int((x * 2685821657736338717) >> 33 % uint64(max(q.vocab-1000, 1)))
}

func (q *request) finishReasonJSON(b []byte, n int) []byte {
	if q.stopByEOS && n == q.outLen {
		return append(b, `{"type":"stop","matched":2}`...)
	}
	b = append(b, `{"type":"length","length":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// words turns token ids into text; all are plain ASCII needing no JSON escaping.
var words = []string{" the", " of", " and", " to", " in", " a", " is", " that", " for", " it", " as", " was",
	" with", " be", " by", " on", " not", " he", " this", " are", " or", " his", " from", " at", " which",
	" but", " have", " an", " had", " they", " you", " were", " their", " one", " all", " we", " can",
	" her", " has", " there", " been", " if", " more", " when", " will", " would", " who", " so", " no",
	" model", " token", " server", " time", " data", " system", " value", " first", " new", " each",
	" other", " than", " then", " now", ".", ","}

func tokenText(id int) string { return words[id%len(words)] }

func itoa(n int) string { return strconv.Itoa(n) }
