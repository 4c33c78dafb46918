package console

// RouteRow is one row of the console's role × route table, for the external tests.
type RouteRow struct{ Method, Path, MinRole string }

// ConsoleRouteTable returns the role × route table the handler built from opts registers.
func ConsoleRouteTable(opts Options) []RouteRow {
	s := &server{svc: opts.Service, baseURL: opts.BaseURL}
	var out []RouteRow
	for _, r := range s.consoleTable() {
		out = append(out, RouteRow{r.Method, r.Path, r.MinRole})
	}
	return out
}
