package sim

// tokenize turns a text prompt into token ids the way the prefix cache
// needs them: deterministically, and prefix-stably, so that two prompts
// that share a leading text (a system prompt) share their leading ids up to
// the last word they have in common, as a real tokenizer's ids would. It is
// not a real tokenizer: the text splits into words (a word starts at
// whitespace after a non-space, like GPT-style pre-tokenization keeps the
// leading space), each word into pieces of at most 5 bytes (about
// 4 characters a token for English text, as BPE tokenizers give and as the
// length estimate was before), and a piece's id is its
// FNV-1a hash modulo the vocabulary. An empty text is one token (a real
// tokenizer's BOS).
func tokenize(text string, vocab int) []int32 {
	if text == "" {
		return []int32{pieceID("", vocab)}
	}
	var out []int32
	start := 0
	flush := func(end int) {
		for start < end {
			n := min(5, end-start)
			out = append(out, pieceID(text[start:start+n], vocab))
			start += n
		}
	}
	for i := 1; i < len(text); i++ {
		if isSpace(text[i]) && !isSpace(text[i-1]) {
			flush(i)
		}
	}
	flush(len(text))
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

func pieceID(p string, vocab int) int32 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i])
		h *= 1099511628211
	}
	return int32(h % uint64(max(vocab, 1)))
}
