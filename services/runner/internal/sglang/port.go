package sglang

import (
	"fmt"
	"net"
	"sync"
)

// Ports hands out free TCP ports on 127.0.0.1 for trial servers and remembers
// the ones in use, so two trials started at the same moment never get the
// same port even before either server has bound it. The zero value is ready.
type Ports struct {
	mu    sync.Mutex
	inUse map[int]bool
}

// Pick returns a port that is free now and not handed out already. Release it
// when the server has stopped.
func (p *Ports) Pick() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse == nil {
		p.inUse = map[int]bool{}
	}
	for range 32 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if !p.inUse[port] {
			p.inUse[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("sglang: no free port after 32 tries")
}

// Release returns a port picked earlier.
func (p *Ports) Release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("sglang: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
