package lab

import "strings"

// KeepalivedStates returns the state keepalived last entered for each
// vrrp_instance, by name, as its log says ("(VI_51) Entering BACKUP
// STATE"). Its notify scripts run as processes of their own and may
// finish out of order, so a state file they write can end on a state
// already left; the log cannot.
func KeepalivedStates(log string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(log) {
		open := strings.Index(line, "(")
		name, rest, ok := strings.Cut(line[open+1:], ") Entering ")
		if f := strings.Fields(rest); open >= 0 && ok && len(f) >= 2 && f[1] == "STATE" {
			out[name] = f[0]
		}
	}
	return out
}
