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

// helpTemplate renders one row per variable from the struct tags, through
// envconfig's own usage machinery, so the table cannot drift from decoding.
var helpTemplate = template.Must(template.New("help").Funcs(template.FuncMap{
	"deflt": func(def, req string) string {
		switch {
		case req == "true":
			return "(required)"
		case def == "":
			return "(empty)"
		}
		return def
	},
}).Parse(`{{range .}}  {{.Key}}	{{deflt (.Tags.Get "default") (.Tags.Get "required")}}	{{.Tags.Get "desc"}}{{with .Tags.Get "accept"}} [{{.}}]{{end}}
{{end}}`))

// Help writes the table of every variable of every section: name, default,
// meaning and accepted values.
func Help(w io.Writer, sections ...Section) error {
	for _, s := range sections {
		if _, err := fmt.Fprintf(w, "\n%s:\n", s.Title); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 1, 4, 2, ' ', 0)
		if err := envconfig.Usaget(Prefix, s.Spec, tw, helpTemplate); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// Print writes every variable with the value it resolved to, one
// KEY=value line each, grouped by section.
func Print(w io.Writer, sections ...Section) error {
	for _, s := range sections {
		if _, err := fmt.Fprintf(w, "# %s\n", s.Title); err != nil {
			return err
		}
		v := reflect.ValueOf(s.Spec).Elem()
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("ignored") == "true" {
				continue
			}
			key := keyOf(single(f, v.Field(i)))
			if _, err := fmt.Fprintf(w, "%s=%s\n", key, show(v.Field(i))); err != nil {
				return err
			}
		}
	}
	return nil
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
