package page

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
)

var (
	//go:embed assets/live.html
	liveHTML string
	//go:embed assets/live.css
	liveCSS string
	//go:embed assets/live.js
	liveJS string

	pageTemplate = template.Must(template.New("live").Parse(liveHTML))
)

// Encode returns d as JSON (what data.json serves) and its ETag, a digest
// of everything but the build time, so an unchanged study keeps its ETag.
func Encode(d Data) (body []byte, etag string, err error) {
	now := d.Now
	d.Now = now.UTC().Truncate(0)
	stable := d
	stable.Now = stable.UpdatedAt
	b, err := json.Marshal(stable)
	if err != nil {
		return nil, "", fmt.Errorf("encode page data of %s: %w", d.Study, err)
	}
	sum := sha256.Sum256(b)
	etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	if body, err = json.Marshal(d); err != nil {
		return nil, "", fmt.Errorf("encode page data of %s: %w", d.Study, err)
	}
	return body, etag, nil
}

// Render writes the page: the HTML with its style and script inline and d
// embedded (JSON inside a script element: json.Marshal escapes '<', so the
// data cannot close it).
func Render(d Data) ([]byte, error) {
	body, etag, err := Encode(d)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = pageTemplate.Execute(&buf, struct {
		Study, ETag string
		CSS         template.CSS
		JS          template.JS
		Data        template.JS
	}{d.Study, etag, template.CSS(liveCSS), template.JS(liveJS), template.JS(body)})
	if err != nil {
		return nil, fmt.Errorf("render page of %s: %w", d.Study, err)
	}
	return buf.Bytes(), nil
}
