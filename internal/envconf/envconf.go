// Package envconf reads vipvisor's settings from the environment with
// github.com/kelseyhightower/envconfig, and adds what envconfig lacks for an
// operator-facing tool: every problem reported at once, not only the first;
// unknown prefixed variables rejected; no unprefixed fallbacks; and a help
// table generated from the same struct tags that drive decoding. Integers
// are decimal whatever envconfig would make of them: 051 is 51, and 0x33,
// +5 or 1_000 are errors.
//
// A settings struct is flat. Each field may carry the tags
//
//	split_words:"true"  the variable name is the field name in SNAKE_CASE
//	default:"…"         the value when the variable is unset
//	required:"true"     the variable must be set
//	accept:"…"          the accepted values, shown in errors and in help
//	desc:"…"            the meaning, shown in help
//
// The envconfig tag (an explicit name) is refused: envconfig falls back to
// the unprefixed name for such fields, so VIPVISOR_INTERFACE would silently
// be taken from INTERFACE.
package envconf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every variable vipvisor reads.
const Prefix = "VIPVISOR"

// Section is one package's settings: a pointer to a flat struct.
type Section struct {
	Title string // heading in the help table
	Spec  any    // pointer to the settings struct
	// Scope returns the settings struct of one scope, when Spec has a
	// Names field (see scope.go): the same pointer for the same name, so
	// Print shows what Load filled in.
	Scope func(name string) any
}

// Validator is implemented by settings structs that check their decoded
// values. Each returned error names the variable it is about.
type Validator interface {
	Validate() []error
}

// Errors is every problem found in the environment, one per variable.
type Errors []error

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (e Errors) Unwrap() []error { return e }

// Load decodes every section from the environment, then validates each
// section that implements Validator. It returns nil or an Errors holding
// every problem found, in the order of the sections and their fields, then
// the unknown variables. It changes nothing but the structs it is given.
func Load(sections ...Section) error {
	known := map[string]bool{}
	errs, scopes := load(known, sections)
	errs = append(errs, unknown(known, scopes)...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// LoadSome is Load for a command that needs only some sections, such as
// `vipvisor status` run in a shell that also holds a service's settings:
// variables of other sections are not reported as unknown.
func LoadSome(sections ...Section) error {
	if errs, _ := load(map[string]bool{}, sections); len(errs) > 0 {
		return errs
	}
	return nil
}

func load(known map[string]bool, sections []Section) (errs Errors, scopes scopeInfo) {
	var scoped []scoping
	for _, s := range sections {
		keys, failed, decodeErrs := decode(s.Spec, known)
		if names, key, ok := scopeOf(s); ok && s.Scope != nil && (len(names) > 0 || isSet(key)) {
			// A template: each scope validates what it resolved to.
			errs = append(errs, templateErrors(s.Spec, decodeErrs)...)
			scoped = append(scoped, scoping{s: s, names: names, namesKey: key, failed: failed})
			if slices.Contains(failed, key) {
				scopes.unsure = append(scopes.unsure, perScopeKeys(s.Spec)...)
			}
			continue
		}
		sectionErrs := decodeErrs
		if v, ok := s.Spec.(Validator); ok {
			// Validate only what decoded: a value that failed to decode
			// holds its default, and checking it would report a second,
			// misleading problem about the same variable.
			sectionErrs = append(sectionErrs, skipFields(v.Validate(), failed)...)
		}
		errs = append(errs, inFieldOrder(sectionErrs, keys)...)
	}
	// Scopes are read once every plain variable is known, so that a name
	// that would clash with one is refused.
	for _, sc := range scoped {
		names, nameErrs := checkNames(sc.names, sc.namesKey, known)
		errs = append(errs, nameErrs...)
		if len(nameErrs) > 0 {
			scopes.unsure = append(scopes.unsure, perScopeKeys(sc.s.Spec)...)
		}
		sc.names = names
		errs = append(errs, loadScopes(known, sc)...)
		scopes.names = append(scopes.names, names...)
	}
	return errs, scopes
}

func isSet(key string) bool {
	_, set := os.LookupEnv(key)
	return set
}

// VarError is a problem with one variable's value.
type VarError struct {
	Key    string // full variable name, e.g. VIPVISOR_VRID
	Value  string
	Set    bool // whether the variable is set at all
	Reason string
	Accept string // what is accepted, from the accept tag or the validator
}

func (e *VarError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Key, e.Reason)
	if e.Set {
		msg = fmt.Sprintf("%s=%q: %s", e.Key, e.Value, e.Reason)
	}
	if e.Accept != "" {
		msg += "; accepted: " + e.Accept
	}
	return msg
}

// Invalid returns a VarError for the variable named by key (without the
// prefix), read back from the environment so the message shows what the
// user wrote.
func Invalid(key, reason, accept string) error {
	full := Prefix + "_" + key
	v, set := os.LookupEnv(full)
	return &VarError{Key: full, Value: v, Set: set, Reason: reason, Accept: accept}
}

// decode processes each field of spec on its own, so that one bad value
// does not hide the next. A plain integer that is set is decoded as
// decimal here (see decimal.go); everything else, and every default, goes
// through envconfig. It records every key it knows in known and
// returns the errors, plus the keys that failed so validation can skip them.
func decode(spec any, known map[string]bool) (keys, failed []string, errs []error) {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		if _, ok := f.Tag.Lookup("envconfig"); ok {
			panic(fmt.Sprintf("envconf: field %s.%s has an envconfig tag; use split_words", t, f.Name))
		}
		key := keyOf(single(f, v.Field(i)))
		known[key] = true
		keys = append(keys, key)
		if err := decodeField(f, v.Field(i), Prefix, key); err != nil {
			failed = append(failed, key)
			errs = append(errs, err)
		}
	}
	return keys, failed, errs
}

// decodeField decodes the variable key into field f (value fv): a set
// plain integer as decimal, everything else, and every default, through
// envconfig with prefix.
func decodeField(f reflect.StructField, fv reflect.Value, prefix, key string) error {
	if raw, set := os.LookupEnv(key); set && decimalField(f.Type) {
		if err := setDecimal(fv, raw); err != nil {
			return &VarError{Key: key, Value: raw, Set: true, Reason: err.Error(), Accept: f.Tag.Get("accept")}
		}
		return nil
	}
	one := single(f, fv)
	if err := envconfig.Process(prefix, one.Interface()); err != nil {
		return fieldError(key, f, err)
	}
	fv.Set(one.Elem().Field(0))
	return nil
}

// single returns a pointer to a new struct made of field f alone, holding
// the current value, so envconfig can process one variable at a time.
func single(f reflect.StructField, cur reflect.Value) reflect.Value {
	one := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: f.Name, Type: f.Type, Tag: f.Tag,
	}}))
	one.Elem().Field(0).Set(cur)
	return one
}

// keyOf asks envconfig for the variable name of a one-field struct, so the
// name rules (split_words, acronyms) are envconfig's own.
func keyOf(one reflect.Value) string {
	var b strings.Builder
	if err := envconfig.Usagef(Prefix, one.Interface(), &b, "{{range .}}{{usage_key .}}{{end}}"); err != nil {
		panic(fmt.Sprintf("envconf: %v", err))
	}
	return b.String()
}

func fieldError(key string, f reflect.StructField, err error) error {
	value, set := os.LookupEnv(key)
	reason := err.Error()
	var pe *envconfig.ParseError
	switch {
	case errors.As(err, &pe):
		reason = cause(pe.Err)
	case strings.HasPrefix(reason, "required key"):
		reason = "required but not set"
	}
	return &VarError{Key: key, Value: value, Set: set, Reason: reason, Accept: f.Tag.Get("accept")}
}

// cause says in words what went wrong in decoding, without strconv's
// wording.
func cause(err error) string {
	var ne *strconv.NumError
	switch {
	case errors.Is(err, strconv.ErrRange):
		return "out of range"
	case errors.As(err, &ne) && ne.Func == "ParseBool":
		return "not a boolean"
	case errors.As(err, &ne):
		return "not a number"
	case strings.HasPrefix(err.Error(), "time: "):
		return "not a duration (write it like 500ms, 10s, 1m30s)"
	}
	return err.Error()
}

// skipFields drops validation errors about keys that already failed to decode.
func skipFields(errs []error, failed []string) []error {
	var out []error
	for _, err := range errs {
		var ve *VarError
		if errors.As(err, &ve) && slices.Contains(failed, ve.Key) {
			continue
		}
		out = append(out, err)
	}
	return out
}

// inFieldOrder sorts errors by the position of their variable among keys,
// so the report reads in the order of `vipvisor help`.
func inFieldOrder(errs []error, keys []string) []error {
	pos := func(err error) int {
		var ve *VarError
		if errors.As(err, &ve) {
			return slices.Index(keys, ve.Key)
		}
		return len(keys)
	}
	slices.SortStableFunc(errs, func(a, b error) int { return pos(a) - pos(b) })
	return errs
}

// sharedKey returns the plain variable that name, a scope's copy of it,
// stands for, or "".
func sharedKey(name string, known map[string]bool, scopes []string) string {
	for _, n := range scopes {
		if rest, ok := strings.CutPrefix(name, ScopePrefix(n)+"_"); ok && known[Prefix+"_"+rest] {
			return Prefix + "_" + rest
		}
	}
	return ""
}

// unknown reports every prefixed variable that no section knows.
// A scope's copy of a variable read once for all (VIPVISOR_WEB1_NOTIFY)
// is told so.
func unknown(known map[string]bool, scopes scopeInfo) []error {
	var errs []error
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, Prefix+"_") && !known[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if scopes.maybe(name) {
			continue
		}
		if plain := sharedKey(name, known, scopes.names); plain != "" {
			errs = append(errs, fmt.Errorf("%s: unknown variable: %s is one for all instances", name, plain))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: unknown variable (see `vipvisor help` for the list)", name))
	}
	return errs
}
