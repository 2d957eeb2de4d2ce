package envconf

import (
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Var is one variable as help and the manual describe it, read from the
// struct tags through envconfig's own usage machinery, so neither can drift
// from decoding.
type Var struct {
	Key, Default, Desc, Accept string
	Required                   bool
}

// varTemplate writes one record per variable, its fields split by the ASCII
// unit separator and the records by the record separator.
var varTemplate = template.Must(template.New("vars").Parse(
	`{{range .}}{{.Key}}` + "\x1f" + `{{.Tags.Get "default"}}` + "\x1f" + `{{.Tags.Get "required"}}` + "\x1f" +
		`{{.Tags.Get "desc"}}` + "\x1f" + `{{.Tags.Get "accept"}}` + "\x1e" + `{{end}}`))

// Vars returns the variables of a section, in declaration order.
func Vars(s Section) ([]Var, error) {
	var b strings.Builder
	if err := envconfig.Usaget(Prefix, s.Spec, &b, varTemplate); err != nil {
		return nil, err
	}
	var vars []Var
	for rec := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\x1e"), "\x1e") {
		if rec == "" {
			continue
		}
		f := strings.Split(rec, "\x1f")
		if len(f) != 5 {
			return nil, fmt.Errorf("envconf: malformed variable record %q", rec)
		}
		vars = append(vars, Var{Key: f[0], Default: f[1], Required: f[2] == "true", Desc: f[3], Accept: f[4]})
	}
	return vars, nil
}

// Help writes the table of every variable of every section: name, default,
// meaning and accepted values.
func Help(w io.Writer, sections ...Section) error {
	for _, s := range sections {
		vars, err := Vars(s)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "\n%s:\n", s.Title); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 1, 4, 2, ' ', 0)
		for _, v := range vars {
			def := v.Default
			switch {
			case v.Required:
				def = "(required)"
			case def == "":
				def = "(empty)"
			}
			line := "  " + v.Key + "\t" + def + "\t" + v.Desc
			if v.Accept != "" {
				line += " [" + v.Accept + "]"
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// Print writes every variable with the value it resolved to, one
// KEY=value line each, grouped by section; a scoped section shows its
// shared variables, then each scope's own.
func Print(w io.Writer, sections ...Section) error {
	for _, s := range sections {
		names, _, _ := scopeOf(s)
		if s.Scope == nil {
			names = nil
		}
		if _, err := fmt.Fprintf(w, "# %s\n", s.Title); err != nil {
			return err
		}
		if err := printFields(w, s.Spec, Prefix, func(f reflect.StructField) bool { return len(names) == 0 || shared(f) }); err != nil {
			return err
		}
		for _, n := range names {
			if _, err := fmt.Fprintf(w, "# %s instance %s\n", s.Title, n); err != nil {
				return err
			}
			if err := printFields(w, s.Scope(n), ScopePrefix(n), func(f reflect.StructField) bool { return !shared(f) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// printFields writes KEY=value for the fields of spec that pick selects,
// the keys under prefix.
func printFields(w io.Writer, spec any, prefix string, pick func(reflect.StructField) bool) error {
	var err error
	eachField(spec, func(f reflect.StructField, fv reflect.Value) {
		if err != nil || !pick(f) {
			return
		}
		key := prefix + strings.TrimPrefix(keyOf(single(f, fv)), Prefix)
		_, err = fmt.Fprintf(w, "%s=%s\n", key, show(fv))
	})
	return err
}

// show formats a resolved value the way a user would write it.
func show(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return shortDuration(x)
	case netip.Addr:
		if !x.IsValid() {
			return ""
		}
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration writes d without zero trailing units: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
