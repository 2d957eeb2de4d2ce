package envconf

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"nginx", []string{"nginx"}, false},
		{"  nginx   -c  /x.conf ", []string{"nginx", "-c", "/x.conf"}, false},
		{`nginx -g 'daemon off;'`, []string{"nginx", "-g", "daemon off;"}, false},
		{`nginx -c "/etc/my nginx.conf"`, []string{"nginx", "-c", "/etc/my nginx.conf"}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`"a \"q\" b"`, []string{`a "q" b`}, false},
		{`'a \ b'`, []string{`a \ b`}, false},
		{`x''`, []string{"x"}, false},
		{`''`, []string{""}, false},
		{`a'b'"c"d`, []string{"abcd"}, false},
		{`$HOME`, []string{"$HOME"}, false},
		// Inside double quotes a backslash escapes only $ ` " \ and a
		// newline, as in sh; before anything else it stays.
		{`"a\.b"`, []string{`a\.b`}, false},
		{`grep -q "^ok\s*$" /run/state`, []string{"grep", "-q", `^ok\s*$`, "/run/state"}, false},
		{`"a\$b \"c\" d\\e"`, []string{`a$b "c" d\e`}, false},
		{"\"a\\\nb\"", []string{"ab"}, false},
		{"a \\\n b", []string{"a", "b"}, false},
		{`\.x`, []string{".x"}, false},
		{"a\tb\nc", []string{"a", "b", "c"}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := SplitWords(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SplitWords(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzWords checks that String quotes any word list so that SplitWords
// gives it back unchanged.
func FuzzWords(f *testing.F) {
	for _, s := range []string{"nginx -g 'daemon off;'", `a "b c" d\ e`, `'it'\''s'`, "", `"a\.b"`,
		"'multi\nline' \"x\\\ny\"", `'' "" x`, "\"\xff\"", `"!" '#' "~" '*'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			return
		}
		again, err := SplitWords(Words(words).String())
		if err != nil {
			t.Fatalf("String() of %q does not split: %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, words) {
			t.Fatalf("round trip of %q gave %q", words, again)
		}
	})
}

// TestWordsStringPastesIntoAShell checks the promise of Words.String that
// `vipvisor check` relies on: a real sh splits the printed line back into
// the same words.
func TestWordsStringPastesIntoAShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		lab.Skip(t, "no sh")
	}
	w := Words{"nginx", "-g", "daemon off;", `a\.b`, "it's", "", "$HOME", "*", "tab\there", "line\nbreak", `"q"`, "!x", "~"}
	out, err := exec.Command(sh, "-c", `printf '%s\0' `+w.String()).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, []string(w)) {
		t.Errorf("sh split %s into\n%q, want\n%q", w, got, []string(w))
	}
	if want := "nginx -g 'daemon off;'"; Words(w[:3]).String() != want {
		t.Errorf("String() = %s, want %s", Words(w[:3]), want)
	}
}
