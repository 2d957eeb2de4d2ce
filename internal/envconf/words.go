package envconf

import (
	"errors"
	"strings"
)

// Words is a command line split into arguments the way a POSIX shell splits
// a simple command: on blanks, with single quotes, double quotes and
// backslash escapes. No expansion of any kind is done and no shell is run.
type Words []string

// Decode implements envconfig.Decoder.
func (w *Words) Decode(s string) error {
	words, err := SplitWords(s)
	if err != nil {
		return err
	}
	*w = words
	return nil
}

func (w Words) String() string {
	q := make([]string, len(w))
	for i, s := range w {
		q[i] = quote(s)
	}
	return strings.Join(q, " ")
}

// SplitWords splits s into words; see Words.
func SplitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune // the open quote, or 0
	)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote == '\'' && r == '\'', quote == '"' && r == '"':
			quote = 0
		case quote == '\'':
			cur.WriteRune(r)
		case r == '\\' && (quote == 0 || quote == '"'):
			if i+1 == len(runes) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			cur.WriteRune(runes[i])
			in = true
		case quote == '"':
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated " + string(quote) + " quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// quote returns s as one shell word.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\;$&|<>()*?#~`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
