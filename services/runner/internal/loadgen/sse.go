package loadgen

import "bytes"

// SSEParser splits a text/event-stream into events incrementally: feed it
// whatever each Read returned and it calls back once per complete event with
// the event's data (several data: lines joined by "\n"). It follows the HTML
// living standard's parsing rules where they matter here: lines end in "\n",
// "\r\n" or "\r" (also when split across reads), "data:" takes an optional
// single space, comment lines (":...") and other fields are ignored, and an
// event is dispatched at a blank line. It allocates only to grow its buffers,
// which are reused from event to event; call Reset to reuse a parser.
type SSEParser struct {
	line    []byte // a partial line carried over from the previous Feed
	data    []byte // the data of the event being built
	hasData bool   // a data field was seen in the current event
	lastCR  bool   // the previous Feed ended on '\r': a leading '\n' is part of that line end
}

// Reset forgets any partial line and event.
func (p *SSEParser) Reset() {
	p.line, p.data = p.line[:0], p.data[:0]
	p.hasData, p.lastCR = false, false
}

// Feed parses b. fn is called for each complete event; the slice it gets is
// valid only during the call. If fn returns false parsing stops and Feed
// returns false (the rest of b is dropped).
func (p *SSEParser) Feed(b []byte, fn func(data []byte) bool) bool {
	if p.lastCR && len(b) > 0 {
		p.lastCR = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.line = append(p.line, b...)
			return true
		}
		var line []byte
		if len(p.line) > 0 {
			p.line = append(p.line, b[:i]...)
			line = p.line
		} else {
			line = b[:i]
		}
		if b[i] == '\r' {
			if i+1 < len(b) {
				if b[i+1] == '\n' {
					i++
				}
			} else {
				p.lastCR = true
			}
		}
		b = b[i+1:]
		ok := p.processLine(line, fn)
		p.line = p.line[:0]
		if !ok {
			return false
		}
	}
	return true
}

// Flush dispatches an event left without its closing blank line when the
// stream ends (lenient: some servers close right after the last data line).
func (p *SSEParser) Flush(fn func(data []byte) bool) bool {
	if len(p.line) > 0 {
		ok := p.processLine(p.line, fn)
		p.line = p.line[:0]
		if !ok {
			return false
		}
	}
	return p.processLine(nil, fn)
}

func (p *SSEParser) processLine(line []byte, fn func([]byte) bool) bool {
	if len(line) == 0 {
		if !p.hasData {
			return true
		}
		ok := fn(p.data)
		p.data, p.hasData = p.data[:0], false
		return ok
	}
	if line[0] == ':' {
		return true // comment / keep-alive
	}
	field, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		field, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if string(field) != "data" {
		return true // event:, id:, retry: and unknown fields do not matter here
	}
	if p.hasData {
		p.data = append(p.data, '\n')
	}
	p.data = append(p.data, value...)
	p.hasData = true
	return true
}
