package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chromium is a headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: commands on fd 3, replies on fd 4, each a
// JSON message ended by a NUL byte), so the test needs no WebSocket library
// and opens no port.
type chromium struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser
	mu      sync.Mutex
	nextID  atomic.Int64
	pending map[int64]chan cdpReply
	session string
	stderr  bytes.Buffer
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromiumPath finds Debian's chromium, or skips the test where apt cannot
// install it (`make test` runs `make test-deps` first, so a missing browser
// where apt is available is a failure).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		t.Fatal("chromium is not installed: run `make test-deps` (apt-get install chromium)")
	}
	t.Skip("chromium is not installed and apt-get is not available to install it: skipping the page test in a browser")
	return ""
}

func startChromium(t *testing.T, width, height int) *chromium {
	t.Helper()
	bin := chromiumPath(t)
	cmdR, cmdW, err := os.Pipe() // we write commands, the browser reads fd 3
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe() // the browser writes fd 4, we read replies
	if err != nil {
		t.Fatal(err)
	}
	c := &chromium{t: t, in: cmdW, pending: map[int64]chan cdpReply{}}
	c.cmd = exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--remote-debugging-pipe",
		fmt.Sprintf("--window-size=%d,%d", width, height), "--user-data-dir="+t.TempDir(), "about:blank")
	c.cmd.ExtraFiles = []*os.File{cmdR, outW}
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	cmdR.Close()
	outW.Close()
	go c.readLoop(outR)
	t.Cleanup(func() {
		_ = c.in.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	var target struct {
		TargetID string `json:"targetId"`
	}
	c.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	c.session = attached.SessionID
	c.call(c.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return c
}

func (c *chromium) readLoop(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var m struct {
			ID int64 `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // events
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends one command (to the browser, or to the page's session) and
// decodes its result into out.
func (c *chromium) call(session, method string, params any, out any) {
	c.t.Helper()
	id := c.nextID.Add(1)
	ch := make(chan cdpReply, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	if _, err := c.in.Write(append(b, 0)); err != nil {
		c.t.Fatalf("%s: write to chromium: %v\n%s", method, err, c.stderr.String())
	}
	select {
	case r, ok := <-ch:
		if !ok {
			c.t.Fatalf("%s: chromium closed the pipe\n%s", method, c.stderr.String())
		}
		if r.Error != nil {
			c.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				c.t.Fatalf("%s: decode %s: %v", method, r.Result, err)
			}
		}
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s: no answer from chromium in 30 s\n%s", method, c.stderr.String())
	}
}

func (c *chromium) navigate(url string) {
	c.t.Helper()
	c.call(c.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func (c *chromium) eval(expr string, out any) {
	c.t.Helper()
	if err := c.tryEval(expr, out); err != nil {
		c.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// tryEval is eval returning the page's exception (a page still loading has
// no body yet, say) instead of failing the test.
func (c *chromium) tryEval(expr string, out any) error {
	c.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	c.call(c.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		msg := r.ExceptionDetails.Text
		if r.ExceptionDetails.Exception != nil {
			msg = r.ExceptionDetails.Exception.Description
		}
		return errors.New(msg)
	}
	if out != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			return fmt.Errorf("decode %s: %w", r.Result.Value, err)
		}
	}
	return nil
}

// screenshot writes a PNG of the whole page to path.
func (c *chromium) screenshot(path string) {
	c.t.Helper()
	var r struct {
		Data []byte `json:"data"` // base64 in JSON: encoding/json decodes it into bytes
	}
	c.call(c.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &r)
	if err := os.WriteFile(path, r.Data, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// waitEval polls a boolean JavaScript expression until it holds.
func (c *chromium) waitEval(ctx context.Context, limit time.Duration, what, expr string) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var ok bool
		err := c.tryEval(expr, &ok)
		if ok && err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var dom string
			_ = c.tryEval(`document.getElementById("summary") ? document.getElementById("summary").textContent + " | " + document.getElementById("conn").textContent : document.documentElement.outerHTML.slice(0, 2000)`, &dom)
			c.t.Fatalf("timed out after %s waiting for %s (last error: %v); page: %s", limit, what, err, dom)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
