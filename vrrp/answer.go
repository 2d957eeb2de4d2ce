package vrrp

import "time"

// A master answers what suggests another router holds, or is about to
// take, the virtual addresses: an advert of lower priority (a split brain
// that this router wins), an advert of priority 0 (a master leaving; the
// answer tells the backups there is still one, RFC 5798 §6.4.3), and an
// ARP frame from another station for one of the addresses. Answering
// each at once, as RFC 5798 and keepalived do, lets one forged packet
// cost us an advert and a burst of gratuitous ARP: a flood of them was
// amplified more than threefold. So a master answers at most once per
// Advertisement_Interval and reports the rest as AnswerSuppressed. What it
// did not answer is answered by its next regular advert, which then counts
// as an answer and comes with the announcement owed, if any: under a
// flood the master sends one advert and at most one burst per interval,
// and a real split brain is still answered within an interval.

// owed is what suppressed answers leave to the next regular advert.
type owed struct {
	answer   bool // the advert is an answer: the next packet waits an interval
	announce bool // and it comes with gratuitous ARP (Reannounce)
}

// answer is a master's answer at now to a packet from from: an advert,
// and with announce a burst of gratuitous ARP that is repeated once more
// a little later (Reannounce). A now before the last answer (a clock
// stepped back) allows an answer, so a wrong clock cannot silence one.
func (m *machine) answer(now time.Time, from string, announce bool) []action {
	if since := now.Sub(m.lastAnswer); !m.lastAnswer.IsZero() && since >= 0 && since < m.cfg.Interval {
		m.owed.answer = true
		m.owed.announce = m.owed.announce || announce
		return []action{answerSuppressed{From: from}}
	}
	m.lastAnswer = now
	acts := m.advertise(now)
	m.owed.answer = false
	if announce {
		m.owed.announce = false
		acts = append(acts, reannounce{})
	}
	return acts
}

// conflict handles an ARP frame from another station for one of our
// addresses. Only a master that is not stopping minds: it is a split
// brain the adverts did not show (the other side may not hear them). The
// first conflict of a master's term is answered with an advert and an
// announcement that claims the addresses back; later ones with an advert
// only. ARP carries no priority: two masters that cannot hear each other
// would otherwise answer each other's announcements for as long as the
// split lasts, moving every client back and forth ten times a second.
// The advert lets VRRP settle it wherever it gets through: a loser that
// hears it steps down and hands over, a winner answers it and announces.
func (m *machine) conflict(now time.Time, c addressConflict) []action {
	if m.state != Master || m.stopping {
		return nil
	}
	with := c.MAC.String()
	announce := !m.reclaimed
	m.reclaimed = true
	return append([]action{splitBrain{With: with}}, m.answer(now, with, announce)...)
}

// advertTimer is the master's Adver_Timer firing: an advert, and the
// announcement a suppressed answer owes, which makes it an answer.
func (m *machine) advertTimer(now time.Time) []action {
	acts := m.advertise(now)
	if m.owed.answer {
		m.lastAnswer = now
	}
	if m.owed.announce {
		acts = append(acts, reannounce{})
	}
	m.owed = owed{}
	return acts
}
