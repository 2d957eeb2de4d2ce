package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP instance state. Its String form is the word keepalived
// passes to notify scripts.
type State int

// The states of a Machine. Init, Backup and Master are RFC 5798 §6.4;
// Fault is keepalived's (no adverts, no takeover) and Stopped is final.
const (
	Init State = iota
	Backup
	Master
	Fault
	Stopped
)

var stateNames = [...]string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"}

// String returns "INIT", "BACKUP", "MASTER", "FAULT" or "STOP".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// machineConfig is the fixed part of one instance as the state machine
// sees it. The caller validates it (see Config.Validate); newMachine only
// clamps Priority to 1..255.
type machineConfig struct {
	// Version is 2 (RFC 3768) or 3 (RFC 5798); it selects the timer
	// arithmetic and whether a backup adopts the master's interval.
	Version int
	// Priority is the configured priority; 255 marks the address owner,
	// which takes over at once and whose priority never changes.
	Priority uint8
	// Interval is this router's Advertisement_Interval.
	Interval time.Duration
	// Preempt lets a higher-priority backup take over from a lower-priority
	// master (RFC 5798 §6.1 Preempt_Mode). The owner always preempts.
	Preempt bool
	// PreemptDelay is how long after Start, or after leaving Fault, a
	// backup still accepts a lower-priority master instead of preempting it.
	PreemptDelay time.Duration
	// PrimaryIP is this router's source address at the start; it breaks
	// ties between equal priorities (RFC 5798 §6.4.3). SetPrimary changes
	// it.
	PrimaryIP netip.Addr
	// StopWait bounds how long a master that is shutting down keeps its
	// addresses while it waits to hear the new master. Zero removes them
	// at once, as keepalived does.
	StopWait time.Duration
}

// machine is the VRRP state machine of one virtual router (RFC 5798 §6.4,
// RFC 3768 §6.4), extended with keepalived's FAULT state, a health gate,
// a planned stop that hands the addresses over before letting go, a hard
// stop (Release), answers rate-limited to one per advert interval, and
// intervals adopted only once a master keeps to them.
//
// A machine does no I/O and reads no clock: Handle takes the time and an
// event and returns the actions to carry out, in order. Its only timer is
// Deadline, at which the caller delivers Timeout. A machine is not safe for
// concurrent use.
type machine struct {
	cfg          machineConfig
	state        State
	prio         uint8         // effective priority
	masterInt    time.Duration // Master_Adver_Interval
	master       netip.Addr    // current master as known
	deadline     time.Time     // zero: none
	preemptUntil time.Time     // end of the preempt delay
	healthy      bool          // eligible to become master
	fault        bool          // the caller reports a fault
	stopping     bool          // Shutdown received as master
	lastAnswer   time.Time     // when a master last answered (answer.go)
	owed         owed          // what suppressed answers left to the next advert
	reclaimed    bool          // this term announced against an address conflict
	candidate    candidate     // an advertised interval not adopted yet
}

// newMachine returns a Machine in Init, unhealthy and without fault. Send
// SetHealthy{true} once the service passes its checks; until then the
// Machine never becomes master.
func newMachine(c machineConfig) *machine {
	c.Priority = max(c.Priority, 1)
	return &machine{cfg: c, prio: c.Priority, masterInt: c.Interval}
}

// State returns the current state. A master that is shutting down reports
// Master until it lets its addresses go; see Stopping.
func (m *machine) State() State { return m.state }

// Master returns the current master's address as known: PrimaryIP while
// master, the last advertising router while backup or in fault, and the
// zero Addr when no master is known.
func (m *machine) Master() netip.Addr { return m.master }

// EffectivePriority returns the priority this router advertises.
func (m *machine) EffectivePriority() uint8 { return m.prio }

// Handle applies ev at time now and returns the actions to carry out in
// order. When the state changes, Transition is the first action.
func (m *machine) Handle(now time.Time, ev event) []action {
	if m.state == Stopped {
		return nil
	}
	switch ev := ev.(type) {
	case start:
		if m.state == Init {
			return m.join(now)
		}
	case advertReceived:
		return m.advert(now, ev)
	case timeout:
		return m.timeout(now)
	case setHealthy:
		return m.setHealthy(now, ev.Healthy)
	case setFault:
		return m.setFault(now, ev.Fault)
	case setPriority:
		return m.setPriority(now, ev.Priority)
	case setPrimary:
		m.cfg.PrimaryIP = ev.Addr
		if m.state == Master {
			m.master = ev.Addr
		}
	case shutdown:
		return m.shutdown(now)
	case release:
		return m.release()
	case addressConflict:
		return m.conflict(now, ev)
	}
	return nil
}

// join enters the virtual router from Init or Fault (RFC 5798 §6.4.1):
// the owner becomes master at once, everyone else a backup that waits out
// Master_Down_Interval. The preempt delay starts over.
func (m *machine) join(now time.Time) []action {
	from := m.state
	m.preemptUntil = now.Add(m.cfg.PreemptDelay)
	m.masterInt = m.cfg.Interval
	m.candidate = candidate{}
	switch {
	case m.fault:
		m.enter(Fault, time.Time{})
		return transition(from, Fault)
	case m.owner() && m.healthy:
		return m.becomeMaster(now)
	}
	m.enter(Backup, now.Add(m.downInterval()))
	return transition(from, Backup)
}

func (m *machine) advert(now time.Time, a advertReceived) []action {
	switch m.state {
	case Backup:
		return m.backupAdvert(now, a)
	case Master:
		return m.masterAdvert(now, a)
	case Fault:
		m.track(a) // no takeover in Fault, only the master's address
	}
	return nil
}

// backupAdvert is RFC 5798 §6.4.2 "If an ADVERTISEMENT is received".
//
// A priority-0 advert shortens the down timer to Skew_Time only when it
// comes from the master this router follows, or when it follows none: a
// master leaving is the only router that sends one. Otherwise a stream of
// forged priority-0 adverts makes every backup take over a Skew_Time
// after each, whatever the master says in between.
func (m *machine) backupAdvert(now time.Time, a advertReceived) []action {
	fromMaster := !m.master.IsValid() || a.Src == m.master
	m.track(a)
	switch {
	case a.Priority == 0 && !fromMaster:
		return nil
	case a.Priority == 0:
		m.deadline = now.Add(m.skew())
	case !m.preempts(now, a.Priority):
		down, acts := m.follow(a)
		m.deadline = now.Add(down)
		return acts
	case m.owner() && m.healthy:
		return m.becomeMaster(now)
	}
	// A discarded lower-priority advert leaves the timer running, so this
	// router takes over when it runs out.
	return nil
}

// preempts reports whether a backup discards an advert of priority prio
// and so lets its down timer run out (RFC 5798 §6.4.2). The owner always
// preempts (RFC 5798 §6.1 Preempt_Mode); others only with Preempt on and
// once the preempt delay has passed.
func (m *machine) preempts(now time.Time, prio uint8) bool {
	switch {
	case prio >= m.prio:
		return false
	case m.owner():
		return true
	}
	return m.cfg.Preempt && !now.Before(m.preemptUntil)
}

// masterAdvert is RFC 5798 §6.4.3 "If an ADVERTISEMENT is received". Any
// advert above priority 0 from another router means two masters: a split
// brain (or a preemption, which looks the same for one advert). The
// loser steps down and hands the addresses over; the winner answers as
// keepalived does, advertising and announcing again to end it sooner, at
// most once per interval (answer.go).
func (m *machine) masterAdvert(now time.Time, a advertReceived) []action {
	switch {
	case m.stopping && a.Priority > 0:
		// The new master is up: keep the VIPs one more interval (see
		// shutdown) until the clients have learnt its MAC.
		if end := now.Add(m.cfg.Interval); end.Before(m.deadline) {
			m.deadline = end
		}
		return nil
	case m.stopping:
		return nil
	case a.Priority == 0:
		return m.answer(now, a.Src.String(), false)
	}
	split := splitBrain{With: a.Src.String()}
	switch m.compare(a) {
	case +1:
		m.track(a)
		down, notes := m.follow(a)
		m.enter(Backup, now.Add(down))
		acts := append(transition(Master, Backup), split, removeVIPs{}, handOver{To: a.Src})
		return append(acts, notes...)
	case -1:
		return append([]action{split}, m.answer(now, a.Src.String(), true)...)
	}
	return nil // our own priority and address: nothing to decide
}

// compare returns +1 when the sender of a wins mastership over this
// router, -1 when this router wins and 0 when a carries our own priority
// and address. Equal priorities go to the higher primary address; for IPv4
// netip's byte order is the unsigned 32-bit order (RFC 5798 §6.4.3).
func (m *machine) compare(a advertReceived) int {
	switch {
	case a.Priority > m.prio:
		return +1
	case a.Priority < m.prio:
		return -1
	}
	return a.Src.Compare(m.cfg.PrimaryIP)
}

// setHealthy gates promotion only: a master that falls sick keeps its
// state, and a sick backup whose down timer ran out takes over as soon as
// it is healthy again.
func (m *machine) setHealthy(now time.Time, healthy bool) []action {
	if healthy == m.healthy {
		return nil
	}
	m.healthy = healthy
	if healthy && m.state == Backup && (m.deadline.IsZero() || m.owner()) {
		return m.becomeMaster(now)
	}
	return nil
}

// setFault enters or leaves keepalived's FAULT state. A master yields with
// a priority-0 advert so a backup takes over after Skew_Time.
func (m *machine) setFault(now time.Time, fault bool) []action {
	if fault == m.fault {
		return nil
	}
	m.fault = fault
	switch {
	case m.state == Init:
		return nil
	case fault && m.stopping:
		return m.finishStop() // priority 0 is already sent
	case fault && m.state == Master:
		m.enter(Fault, time.Time{})
		return append(transition(Master, Fault), sendAdvert{Priority: 0}, removeVIPs{})
	case fault:
		m.enter(Fault, time.Time{})
		return transition(Backup, Fault)
	case m.state == Fault:
		return m.join(now)
	}
	return nil
}

// setPriority changes the effective priority, clamped to 1..254 as
// keepalived does; the owner's stays 255. A master advertises it at once;
// a backup's running down timer moves by the change in
// Master_Down_Interval, as keepalived's does.
func (m *machine) setPriority(now time.Time, prio uint8) []action {
	prio = min(max(prio, 1), 254)
	if m.owner() || prio == m.prio {
		return nil
	}
	old := m.downInterval()
	m.prio = prio
	switch {
	case m.state == Master && !m.stopping:
		return m.advertise(now)
	case m.state == Backup && !m.deadline.IsZero():
		m.deadline = m.deadline.Add(m.downInterval() - old)
	}
	return nil
}

// shutdown is a planned stop. A master sends priority 0 (RFC 5798 §6.4.3
// "If a Shutdown event is received") but keeps its addresses until it hears
// the new master or StopWait passes, so clients are served throughout. On
// hearing the new master it keeps them one more interval: the new master's
// advert comes before its gratuitous ARP, and a client's SYN sent to our MAC
// in between would be lost, or reset by the child's closing listener.
func (m *machine) shutdown(now time.Time) []action {
	switch {
	case m.stopping:
		return nil
	case m.state == Master && m.cfg.StopWait > 0:
		m.stopping = true
		m.deadline = now.Add(m.cfg.StopWait)
		return []action{sendAdvert{Priority: 0}}
	case m.state == Master:
		m.enter(Stopped, time.Time{})
		return append(transition(Master, Stopped), sendAdvert{Priority: 0}, removeVIPs{})
	}
	from := m.state
	m.enter(Stopped, time.Time{})
	return transition(from, Stopped)
}

// release is a hard stop from any state: a master sends priority 0
// (unless a planned stop already did) and removes its addresses at once.
func (m *machine) release() []action {
	from, stopping := m.state, m.stopping
	m.stopping = false
	m.enter(Stopped, time.Time{})
	acts := transition(from, Stopped)
	switch {
	case stopping:
		return append(acts, removeVIPs{})
	case from == Master:
		return append(acts, sendAdvert{Priority: 0}, removeVIPs{})
	}
	return acts
}

func (m *machine) finishStop() []action {
	m.stopping = false
	m.enter(Stopped, time.Time{})
	return append(transition(Master, Stopped), removeVIPs{})
}

// becomeMaster is RFC 5798 §6.4.1/§6.4.2's transition to Master: the
// advert goes first so the old master drops the addresses before ours are
// announced.
func (m *machine) becomeMaster(now time.Time) []action {
	from := m.state
	m.masterInt = m.cfg.Interval
	m.lastAnswer, m.owed, m.reclaimed = time.Time{}, owed{}, false
	m.enter(Master, now.Add(m.cfg.Interval))
	m.master = m.cfg.PrimaryIP
	return append(transition(from, Master), sendAdvert{Priority: m.prio}, addVIPs{}, announce{})
}

func (m *machine) enter(s State, deadline time.Time) {
	m.state = s
	m.deadline = deadline
	if s != Backup {
		m.master = netip.Addr{}
	}
}

// track records the advertising router as master; a priority-0 advert
// from it means it is leaving.
func (m *machine) track(a advertReceived) {
	switch {
	case a.Priority > 0:
		m.master = a.Src
	case a.Src == m.master:
		m.master = netip.Addr{}
	}
}

func (m *machine) owner() bool { return m.cfg.Priority == 255 }

func transition(from, to State) []action {
	return []action{stateChange{From: from, To: to}}
}
