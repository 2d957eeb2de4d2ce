package envconf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// A section may be read once per scope: VIPVISOR_INSTANCES=web1,web2 makes
// the VRRP section a template, and each instance reads
// VIPVISOR_WEB1_<VAR> for every field not tagged scope:"shared", with the
// template's value (VIPVISOR_<VAR>, else the default) where that is unset.
// Shared fields (the scope list itself, a command run for all of them)
// are read once and copied into every scope.

// Names is a comma list of scope names: 1-15 lower-case letters, digits
// or '-', each once. A section holding a Names field is scoped by it.
type Names []string

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,15}$`)

// Decode implements envconfig.Decoder.
func (n *Names) Decode(s string) error {
	var out Names
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !nameRE.MatchString(item) {
			return fmt.Errorf("%q is not a name of 1-15 lower-case letters, digits or '-'", item)
		}
		if slices.Contains(out, item) {
			return fmt.Errorf("%s is listed twice", item)
		}
		out = append(out, item)
	}
	*n = out
	return nil
}

func (n Names) String() string { return strings.Join(n, ",") }

// ScopePrefix is the prefix of a scope's variables: VIPVISOR_WEB1.
func ScopePrefix(name string) string { return Prefix + "_" + strings.ToUpper(name) }

// ScopeKey is the variable a scope reads for key: ScopeKey("web1",
// "VRID") is VIPVISOR_WEB1_VRID.
func ScopeKey(name, key string) string { return ScopePrefix(name) + "_" + key }

// InvalidIn is Invalid for a scope's variable: it names
// VIPVISOR_<NAME>_<KEY> when that is set, else the template's
// VIPVISOR_<KEY> the value came from.
func InvalidIn(name, key, reason, accept string) error {
	return inScope(name, Invalid(key, reason, accept))
}

// inScope rewrites a template variable's error as the scope's own when
// the scope sets that variable.
func inScope(name string, err error) error {
	var ve *VarError
	if !errors.As(err, &ve) {
		return err
	}
	base, ok := strings.CutPrefix(ve.Key, Prefix+"_")
	if !ok {
		return err
	}
	full := ScopeKey(name, base)
	v, set := os.LookupEnv(full)
	if !set {
		return err
	}
	out := *ve
	out.Key, out.Value, out.Set = full, v, true
	return &out
}

// scopeInfo is what load learnt of the scopes, for the report of unknown
// variables.
type scopeInfo struct {
	names []string
	// unsure is set when the list of names was wrong: the per-scope
	// variables (VRID, ...) of a name not read are not reported as
	// unknown on top of the list's own error.
	unsure []string
}

// maybe reports whether name may be a variable of a scope not read.
func (s scopeInfo) maybe(name string) bool {
	for _, k := range s.unsure {
		if strings.HasSuffix(name, "_"+strings.TrimPrefix(k, Prefix+"_")) {
			return true
		}
	}
	return false
}

// perScopeKeys lists the template keys read once per scope.
func perScopeKeys(spec any) []string {
	var keys []string
	eachField(spec, func(f reflect.StructField, fv reflect.Value) {
		if !shared(f) {
			keys = append(keys, keyOf(single(f, fv)))
		}
	})
	return keys
}

// scoping is a section found to be scoped, between the two passes of load.
type scoping struct {
	s        Section
	names    Names
	namesKey string   // the variable of the Names field
	failed   []string // template keys that did not decode
}

// scopeOf returns the Names field of a section and its variable, if it
// has one.
func scopeOf(s Section) (Names, string, bool) {
	var names Names
	key := ""
	eachField(s.Spec, func(f reflect.StructField, fv reflect.Value) {
		if n, ok := fv.Interface().(Names); ok {
			names, key = n, keyOf(single(f, fv))
		}
	})
	return names, key, key != ""
}

// shared reports whether field f is read once for all scopes.
func shared(f reflect.StructField) bool { return f.Tag.Get("scope") == "shared" }

// templateErrors keeps the template's decoding errors but those a scope
// answers: a per-scope variable left unset in the template is required
// of each scope instead.
func templateErrors(spec any, errs []error) []error {
	perScope := perScopeKeys(spec)
	var out []error
	for _, err := range errs {
		var ve *VarError
		if errors.As(err, &ve) && slices.Contains(perScope, ve.Key) && !ve.Set {
			continue
		}
		out = append(out, err)
	}
	return out
}

// eachField calls fn for every field envconf reads.
func eachField(spec any, fn func(f reflect.StructField, fv reflect.Value)) {
	v := reflect.ValueOf(spec).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.IsExported() && f.Tag.Get("ignored") != "true" {
			fn(f, v.Field(i))
		}
	}
}

// checkNames rejects a name whose variables could be read as another
// variable's: VIPVISOR_CHECK_... belongs to the probes, so an instance
// called "check" would make VIPVISOR_CHECK_INTERVAL ambiguous.
func checkNames(names Names, key string, known map[string]bool) (ok Names, errs []error) {
	for _, n := range names {
		p := ScopePrefix(n)
		clash := ""
		for k := range known {
			if k == p || strings.HasPrefix(k, p+"_") {
				clash = k
				break
			}
		}
		if clash != "" {
			errs = append(errs, &VarError{Key: key, Value: os.Getenv(key), Set: true,
				Reason: fmt.Sprintf("the name %s would make %s ambiguous", n, clash),
				Accept: "names whose upper-case form starts no other variable's name, e.g. web1,web2"})
			continue
		}
		ok = append(ok, n)
	}
	return ok, errs
}

// loadScopes reads each scope of sc into the spec sc.s.Scope returns for
// it: the template's values, then the scope's own variables, then the
// scope's validation. Errors a template value causes in several scopes are
// reported once, naming the template's variable.
func loadScopes(known map[string]bool, sc scoping) []error {
	var errs []error
	seen := map[string]bool{}
	add := func(err error) {
		if !seen[err.Error()] {
			seen[err.Error()] = true
			errs = append(errs, err)
		}
	}
	for _, name := range sc.names {
		spec := sc.s.Scope(name)
		reflect.ValueOf(spec).Elem().Set(reflect.ValueOf(sc.s.Spec).Elem())
		var keys, failed []string
		var scopeErrs []error
		eachField(spec, func(f reflect.StructField, fv reflect.Value) {
			if shared(f) {
				return
			}
			base := keyOf(single(f, fv))
			key := ScopeKey(name, strings.TrimPrefix(base, Prefix+"_"))
			known[key] = true
			keys = append(keys, base)
			_, set := os.LookupEnv(key)
			_, baseSet := os.LookupEnv(base)
			switch {
			case set:
				if err := decodeField(f, fv, ScopePrefix(name), key); err != nil {
					failed = append(failed, base)
					scopeErrs = append(scopeErrs, err)
				}
			case !baseSet && f.Tag.Get("required") == "true":
				failed = append(failed, base)
				scopeErrs = append(scopeErrs, &VarError{Key: key, Reason: "required but not set, nor is " + base, Accept: f.Tag.Get("accept")})
			case slices.Contains(sc.failed, base):
				failed = append(failed, base) // reported once, as the template's
			}
		})
		if v, ok := spec.(Validator); ok {
			for _, err := range skipFields(v.Validate(), failed) {
				scopeErrs = append(scopeErrs, inScope(name, err))
			}
		}
		for _, err := range inFieldOrder(scopeErrs, keysIn(name, keys)) {
			add(err)
		}
	}
	return errs
}

// keysIn lists, for ordering, both names of each key: the template's and
// the scope's.
func keysIn(name string, keys []string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, ScopeKey(name, strings.TrimPrefix(k, Prefix+"_")), k)
	}
	return out
}
