package envconf

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Integers are decoded here, not by envconfig: envconfig v1.4.0 parses
// them with strconv.ParseInt(v, 0, …), so VIPVISOR_VRID=051 would be octal
// 41, and 0x33, 0b1 and 1_000 would pass too. An operator writes decimal
// and means decimal: a value is an optional minus sign and the digits 0-9,
// nothing else (no blanks, no plus sign, no base prefix, no underscores),
// and leading zeros do not change it (051 is 51).

// errNotDecimal is the reason given for a value that is not written in
// decimal digits.
var errNotDecimal = errors.New("not a decimal number (digits 0-9 only: no blanks, +, 0x, 0o, 0b or _)")

// decimalField reports whether a field of type t is a plain integer that
// this package decodes itself: of an integer kind, and not a duration or a
// type that decodes itself (such as a signal, given by name).
func decimalField(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return false
	}
	if t == reflect.TypeFor[time.Duration]() {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(reflect.TypeFor[envconfig.Decoder]()) &&
		!p.Implements(reflect.TypeFor[envconfig.Setter]()) &&
		!p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) &&
		!p.Implements(reflect.TypeFor[encoding.BinaryUnmarshaler]())
}

// setDecimal parses s as a decimal integer into v, an integer of any
// size, signed or not.
func setDecimal(v reflect.Value, s string) error {
	if !isDecimal(s) {
		return errNotDecimal
	}
	bits := v.Type().Bits()
	if v.CanInt() {
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return reason(err)
		}
		v.SetInt(n)
		return nil
	}
	if s[0] == '-' {
		return errors.New("out of range")
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return reason(err)
	}
	v.SetUint(n)
	return nil
}

// isDecimal reports whether s is an optional minus sign and one or more
// digits 0-9.
func isDecimal(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func reason(err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of range")
	}
	return fmt.Errorf("%s", cause(err))
}

// Decimal parses s as envconf decodes integer variables: an optional minus
// sign and the digits 0-9, nothing else. Decoders of lists and ranges
// (ports, status codes, signal numbers) use it, so that their numbers obey
// the same rule as plain integer variables.
func Decimal(s string) (int, error) {
	var n int
	if err := setDecimal(reflect.ValueOf(&n).Elem(), s); err != nil {
		return 0, err
	}
	return n, nil
}
