package natsx

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// Instance names one process uniquely: its host, process id and a random
// suffix ("gpu-07-4242-9f3c1a"), safe as a KV key token. Two processes never
// share one, even on one host after a pid is reused.
func Instance() string {
	host, _ := os.Hostname()
	return SanitizeToken(host) + "-" + strconv.Itoa(os.Getpid()) + "-" + RandomSuffix()
}

// RandomSuffix is 6 random hex digits.
func RandomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SanitizeToken maps s to letters, digits, '_' and '-' (a subject token and
// KV key part); an empty result becomes "x".
func SanitizeToken(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}
