package lab

import (
	"maps"
	"testing"
)

func TestKeepalivedStates(t *testing.T) {
	log := `Thu Dec  3 11:02:01 2026: Starting VRRP child process, pid=4242
Thu Dec  3 11:02:01 2026: (VI_51) Entering BACKUP STATE (init)
Thu Dec  3 11:02:01 2026: (VI_52) Entering BACKUP STATE (init)
Thu Dec  3 11:02:02 2026: (VI_51) received lower priority (90) advert from 10.0.0.12 - discarding
Thu Dec  3 11:02:02 2026: (VI_51) Entering MASTER STATE
Thu Dec  3 11:02:03 2026: (VI_52) Entering FAULT STATE
Thu Dec  3 11:02:04 2026: (VI_52) Entering BACKUP STATE
Thu Dec  3 11:02:05 2026: Script ` + "`chk_nginx`" + ` now returning 1 (Entering nothing)
Thu Dec  3 11:02:05 2026: (VI_53) Entering`
	got := KeepalivedStates(log)
	want := map[string]string{"VI_51": "MASTER", "VI_52": "BACKUP"}
	if !maps.Equal(got, want) {
		t.Errorf("KeepalivedStates = %v, want %v", got, want)
	}
}
