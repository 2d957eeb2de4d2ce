package envconf

import (
	"reflect"
	"testing"
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
	for _, s := range []string{"nginx -g 'daemon off;'", `a "b c" d\ e`, `'it'\''s'`, ""} {
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
