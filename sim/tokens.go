package sim

import (
	"encoding/json"
	"strconv"
)

// tokens materialises a request's output ids and text as JSON fragments.
type tokens struct {
	ids, text []byte
	n         int
	// offsets at the previous chunk, for deltas
	idsMark, textMark, nMark int
}

func (t *tokens) extend(q *request, upto int) {
	for t.n < upto {
		id := q.nextToken()
		if t.n > 0 {
			t.ids = append(t.ids, ',')
		}
		t.ids = strconv.AppendInt(t.ids, int64(id), 10)
		t.text = append(t.text, tokenText(id)...)
		t.n++
	}
}

// delta returns the ids and text since the previous delta and moves the mark.
func (t *tokens) delta() (ids, text []byte) {
	ids, text = t.ids[t.idsMark:], t.text[t.textMark:]
	if len(ids) > 0 && ids[0] == ',' {
		ids = ids[1:]
	}
	t.idsMark, t.textMark, t.nMark = len(t.ids), len(t.text), t.n
	return ids, text
}

// appendJSONSafe appends s as JSON string content.
func appendJSONSafe(b []byte, s string) []byte {
	enc, _ := json.Marshal(s)
	return append(b, enc[1:len(enc)-1]...)
}
