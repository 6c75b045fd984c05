package admin

import (
	"html/template"
	"net/url"
	"strings"
	"time"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	// when formats a time in UTC to the second; "" for the zero time.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// iso is a time for a <time datetime> attribute.
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// path escapes an integration id for a URL path segment: an
	// administrator's refs hold a '/'.
	"path": url.PathEscape,
	"join": strings.Join,
	// observes is an integration's patterns, or what empty means.
	"observes": func(o []string) string {
		if len(o) == 0 {
			return "every event"
		}
		return strings.Join(o, ", ")
	},
}

// parsePages parses the embedded templates; they are part of the binary,
// so a mistake in them is a bug that every test finds.
func parsePages() *template.Template {
	return template.Must(template.New("pages").Funcs(funcs).ParseFS(files, "templates/*.html"))
}
