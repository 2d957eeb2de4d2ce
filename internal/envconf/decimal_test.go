package envconf

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// numbers is a settings struct with an integer of each kind the package
// decodes itself, and a type with its own decoder it must leave alone.
type numbers struct {
	Count  int    `default:"7" accept:"0-100"`
	Small  int8   `accept:"-128-127"`
	Port   uint16 `accept:"0-65535"`
	Custom named  `accept:"a name"`
}

// named decodes itself from a name, so it must not be taken for a number.
type named int

func (n *named) Decode(s string) error {
	if s != "seven" {
		return errors.New("not seven")
	}
	*n = 7
	return nil
}

// clearEnv unsets every VIPVISOR_* variable of the test process for the
// duration of the test.
func clearEnv(t *testing.T) {
	for _, name := range []string{"COUNT", "SMALL", "PORT", "CUSTOM"} {
		t.Setenv(Prefix+"_"+name, "") // restored when the test ends
		os.Unsetenv(Prefix + "_" + name)
	}
}

func TestIntegersAreDecimal(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       numbers // when no error is wanted
		reason     string  // the reason wanted, if an error is
	}{
		{"COUNT", "51", numbers{Count: 51}, ""},
		{"COUNT", "051", numbers{Count: 51}, ""},
		{"COUNT", "0100", numbers{Count: 100}, ""},
		{"COUNT", "0", numbers{Count: 0}, ""},
		{"COUNT", "000", numbers{Count: 0}, ""},
		{"COUNT", "-3", numbers{Count: -3}, ""},
		{"SMALL", "-128", numbers{Count: 7, Small: -128}, ""},
		{"PORT", "65535", numbers{Count: 7, Port: 65535}, ""},
		{"CUSTOM", "seven", numbers{Count: 7, Custom: 7}, ""},
		{"COUNT", "0x10", numbers{}, "not a decimal number"},
		{"COUNT", "0X10", numbers{}, "not a decimal number"},
		{"COUNT", "0o7", numbers{}, "not a decimal number"},
		{"COUNT", "0b1", numbers{}, "not a decimal number"},
		{"COUNT", "1_000", numbers{}, "not a decimal number"},
		{"COUNT", "+5", numbers{}, "not a decimal number"},
		{"COUNT", " 5", numbers{}, "not a decimal number"},
		{"COUNT", "5 ", numbers{}, "not a decimal number"},
		{"COUNT", "", numbers{}, "not a decimal number"},
		{"COUNT", "-", numbers{}, "not a decimal number"},
		{"COUNT", "--5", numbers{}, "not a decimal number"},
		{"COUNT", "1e3", numbers{}, "not a decimal number"},
		{"COUNT", "5.0", numbers{}, "not a decimal number"},
		{"COUNT", "٥", numbers{}, "not a decimal number"},
		{"COUNT", "99999999999999999999", numbers{}, "out of range"},
		{"SMALL", "128", numbers{}, "out of range"},
		{"PORT", "65536", numbers{}, "out of range"},
		{"PORT", "-1", numbers{}, "out of range"},
		{"CUSTOM", "7", numbers{}, "not seven"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(Prefix+"_"+tc.key, tc.value)
			var got numbers
			err := Load(Section{Spec: &got})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tc.want {
					t.Errorf("decoded (-want +got):\n-%+v\n+%+v", tc.want, got)
				}
				return
			}
			var ve *VarError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v, want a VarError", err)
			}
			if ve.Key != Prefix+"_"+tc.key || !strings.HasPrefix(ve.Reason, tc.reason) || ve.Accept == "" {
				t.Errorf("error %q, want one about %s_%s saying %q and what is accepted", err, Prefix, tc.key, tc.reason)
			}
			if n := len(err.(Errors)); n != 1 {
				t.Errorf("%d problems reported, want 1: %v", n, err)
			}
		})
	}
}

// FuzzDecimal checks Decimal against its definition: it accepts exactly
// an optional minus sign and digits whose value fits an int, and gives
// that value in base 10 whatever the leading zeros.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"51", "051", "-0", "0x10", "+5", "1_000", " 5", "", "-", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Decimal(s)
		digits := strings.TrimPrefix(s, "-")
		wellFormed := digits != "" && strings.Trim(digits, "0123456789") == ""
		want, perr := strconv.ParseInt(s, 10, strconv.IntSize)
		switch {
		case !wellFormed && err == nil:
			t.Fatalf("Decimal(%q) = %d, want an error", s, n)
		case wellFormed && perr == nil && (err != nil || int64(n) != want):
			t.Fatalf("Decimal(%q) = %d, %v; want %d", s, n, err, want)
		case wellFormed && perr != nil && err == nil:
			t.Fatalf("Decimal(%q) = %d, want out of range", s, n)
		}
	})
}
