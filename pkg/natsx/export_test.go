package natsx

import "time"

// SetTailStall shortens how a tail notices a quiet consumer (tailwatch.go)
// and returns what restores it.
func SetTailStall(check, after time.Duration) (restore func()) {
	c, a := tailStallCheck, tailStallAfter
	tailStallCheck, tailStallAfter = check, after
	return func() { tailStallCheck, tailStallAfter = c, a }
}
