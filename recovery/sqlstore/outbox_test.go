package sqlstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func addNotice(t testing.TB, s *sqlstore.Store, n recovery.Notice) int64 {
	t.Helper()
	var id int64
	update(t, s, func(tx recovery.Tx) (err error) {
		id, err = tx.AddNotice(n)
		return err
	})
	return id
}

func queued(channel, to string, due time.Time) recovery.Notice {
	return recovery.Notice{Channel: channel, To: to, Kind: "status", AccountID: "acct", TicketID: "T-1", Subject: "s",
		Body: "k1:sealed", Masked: "masked", State: recovery.NoticeQueued, NextAttemptAt: due, CreatedAt: t0}
}

func notices(t testing.TB, s *sqlstore.Store, f recovery.NoticeFilter) []recovery.Notice {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 100
	}
	var out []recovery.Notice
	view(t, s, func(tx recovery.ReadTx) (err error) {
		out, err = tx.Notices(f)
		return err
	})
	return out
}

func TestNoticeRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		full := recovery.Notice{Channel: recovery.NoticeEmail, To: "a@example.com", Kind: "reenroll_link", AccountID: "acct",
			TicketID: "T-1", Subject: "Ünïcode subject", Body: "k1:sealed-body", Masked: "link ••••", State: recovery.NoticeSent,
			Attempts: 3, NextAttemptAt: t0.Add(1), CreatedAt: t0, SentAt: t0.Add(2), LastError: "smtp: 451"}
		id1 := addNotice(t, s, full)
		id2 := addNotice(t, s, recovery.Notice{Channel: recovery.NoticeWebhook, Kind: "hold.set", Body: "k1:x", Masked: "{}",
			State: recovery.NoticeQueued, NextAttemptAt: t0, CreatedAt: t0})
		if id1 <= 0 || id2 <= id1 {
			t.Fatalf("ids %d, %d: want positive and growing", id1, id2)
		}
		got := notices(t, s, recovery.NoticeFilter{})
		if len(got) != 2 || got[0].ID != id2 || got[1].ID != id1 {
			t.Fatalf("newest first: %+v", got)
		}
		full.ID = id1
		if got[1] != full {
			t.Errorf("round trip:\n got %+v\nwant %+v", got[1], full)
		}
		if !got[0].SentAt.IsZero() || got[0].To != "" {
			t.Errorf("zero fields: %+v", got[0])
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM notices WHERE sent_at IS NULL AND claimed_until IS NULL"); n != 1 {
			t.Errorf("NULL times: %d rows", n)
		}
		for _, c := range []struct {
			f    recovery.NoticeFilter
			want []int64
		}{
			{recovery.NoticeFilter{Channel: recovery.NoticeEmail}, []int64{id1}},
			{recovery.NoticeFilter{State: recovery.NoticeQueued}, []int64{id2}},
			{recovery.NoticeFilter{TicketID: "T-1"}, []int64{id1}},
			{recovery.NoticeFilter{AccountID: "acct", State: recovery.NoticeQueued}, nil},
			{recovery.NoticeFilter{BeforeID: id2}, []int64{id1}},
			{recovery.NoticeFilter{Limit: 1}, []int64{id2}},
		} {
			var ids []int64
			for _, n := range notices(t, s, c.f) {
				ids = append(ids, n.ID)
			}
			if len(ids) != len(c.want) || (len(ids) > 0 && ids[0] != c.want[0]) {
				t.Errorf("filter %+v: %v, want %v", c.f, ids, c.want)
			}
		}
	})
}

func TestNoticeDueAndClaim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		a1 := addNotice(t, s, queued(recovery.NoticeTelegram, "100", t0))
		later := addNotice(t, s, queued(recovery.NoticeTelegram, "300", t0.Add(time.Minute)))
		a2 := addNotice(t, s, queued(recovery.NoticeTelegram, "100", t0))
		b1 := addNotice(t, s, queued(recovery.NoticeTelegram, "200", t0))
		mail := addNotice(t, s, queued(recovery.NoticeEmail, "x@example.com", t0))
		due := func(inOrder bool) (ids []int64) {
			t.Helper()
			update(t, s, func(tx recovery.Tx) error {
				ns, err := tx.DueNotices(recovery.NoticeTelegram, t0, inOrder, 10)
				for _, n := range ns {
					ids = append(ids, n.ID)
				}
				return err
			})
			return ids
		}
		if got := due(false); len(got) != 3 || got[0] != a1 || got[1] != a2 || got[2] != b1 {
			t.Errorf("due, any order: %v, want [%d %d %d] (not %d, due later, nor %d, e-mail)", got, a1, a2, b1, later, mail)
		}
		if got := due(true); len(got) != 2 || got[0] != a1 || got[1] != b1 {
			t.Errorf("due in order per chat: %v, want [%d %d]", got, a1, b1)
		}

		claim := func(id int64, now time.Time) (int, bool) {
			t.Helper()
			var n int
			var ok bool
			update(t, s, func(tx recovery.Tx) (err error) {
				n, ok, err = tx.ClaimNotice(id, now, now.Add(recovery.NoticeLease))
				return err
			})
			return n, ok
		}
		if n, ok := claim(a1, t0); !ok || n != 1 {
			t.Fatalf("first claim: %d, %v", n, ok)
		}
		if _, ok := claim(a1, t0.Add(recovery.NoticeLease-1)); ok {
			t.Fatal("a live claim was taken again")
		}
		if _, ok := claim(later, t0); ok {
			t.Fatal("a notice not yet due was claimed")
		}
		// A claimed notice is not due, and still holds back its chat's later notice.
		if got := due(true); len(got) != 1 || got[0] != b1 {
			t.Errorf("due while %d is claimed: %v", a1, got)
		}
		// The lease ran out: another dispatcher takes it, counting a second attempt; the
		// first one's outcome no longer writes.
		if n, ok := claim(a1, t0.Add(recovery.NoticeLease)); !ok || n != 2 {
			t.Fatalf("claim after the lease: %d, %v", n, ok)
		}
		finish := func(n recovery.Notice, claimed int) bool {
			t.Helper()
			var ok bool
			update(t, s, func(tx recovery.Tx) (err error) {
				ok, err = tx.FinishNotice(n, claimed)
				return err
			})
			return ok
		}
		sent := recovery.Notice{ID: a1, State: recovery.NoticeSent, Attempts: 1, NextAttemptAt: t0, SentAt: t0.Add(time.Second)}
		if finish(sent, 1) {
			t.Fatal("an outcome of a lost claim was written")
		}
		sent.Attempts = 2
		if !finish(sent, 2) {
			t.Fatal("the outcome of the live claim was not written")
		}
		if finish(sent, 2) {
			t.Fatal("a sent notice was finished twice")
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM notices WHERE id = ? AND state = 'sent' AND attempts = 2 AND claimed_until IS NULL", a1); n != 1 {
			t.Error("the finished notice is not sent with 2 attempts and no claim")
		}
		// With a1 sent, a2 is its chat's next.
		if got := due(true); len(got) != 2 || got[0] != a2 || got[1] != b1 {
			t.Errorf("due after %d was sent: %v", a1, got)
		}
	})
}

// TestNoticeClaimRace: of many transactions claiming the same notices at once, on separate
// connections, each notice is taken once.
func TestNoticeClaimRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		var ids []int64
		for range 10 {
			ids = append(ids, addNotice(t, s, queued(recovery.NoticeEmail, "x@example.com", t0)))
		}
		var mu sync.Mutex
		taken := map[int64]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				err := s.Update(bg, func(tx recovery.Tx) error {
					due, err := tx.DueNotices(recovery.NoticeEmail, t0, false, 10)
					if err != nil {
						return err
					}
					var mine []int64
					for _, n := range due {
						_, ok, err := tx.ClaimNotice(n.ID, t0, t0.Add(time.Minute))
						if err != nil {
							return err
						}
						if ok {
							mine = append(mine, n.ID)
						}
					}
					mu.Lock()
					defer mu.Unlock()
					for _, id := range mine {
						taken[id]++
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			if taken[id] != 1 {
				t.Errorf("notice %d claimed %d times", id, taken[id])
			}
		}
	})
}
