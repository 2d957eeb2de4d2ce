package envconf

import (
	"errors"
	"strings"

	"github.com/kballard/go-shellquote"
)

// Words is a command line split into arguments the way a POSIX shell splits
// a simple command: on blanks, with single quotes, double quotes and
// backslash escapes (inside double quotes a backslash escapes only $, `, ",
// \ and a newline, and is kept before anything else, as in sh). No
// expansion of any kind is done and no shell is run.
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

// String returns the words as one command line that SplitWords, and a
// shell, split back into the same words: `vipvisor check` prints it so that
// it can be pasted back.
func (w Words) String() string {
	q := make([]string, len(w))
	for i, s := range w {
		q[i] = quote(s)
	}
	return strings.Join(q, " ")
}

// SplitWords splits s into words; see Words. The splitting is
// github.com/kballard/go-shellquote's; only its errors are reworded. An
// empty or blank s gives no words (nil).
func SplitWords(s string) ([]string, error) {
	words, err := shellquote.Split(s)
	switch {
	case errors.Is(err, shellquote.UnterminatedSingleQuoteError):
		return nil, errors.New("unterminated ' quote")
	case errors.Is(err, shellquote.UnterminatedDoubleQuoteError):
		return nil, errors.New(`unterminated " quote`)
	case errors.Is(err, shellquote.UnterminatedEscapeError):
		return nil, errors.New("ends with a lone backslash")
	case err != nil:
		return nil, err
	case len(words) == 0:
		return nil, nil
	}
	return words, nil
}

// quote returns s as one shell word: as it is when no character in it is
// special to a shell, else in single quotes, inside which nothing is
// special but the quote itself, which is written as a closing quote, an
// escaped quote and an opening quote.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\r'\"\\;$&|<>()*?[]{}#~`!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
