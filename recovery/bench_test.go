package recovery_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// BenchmarkGenerateCode is the raw cost of one TOTP code: the floor under any verify.
func BenchmarkGenerateCode(b *testing.B) {
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	now := time.Now()
	for b.Loop() {
		if _, err := totp.GenerateCodeCustom(rfcSecret, now, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is a successful verify in-process on SQLite (durable: synchronous=FULL), alone
// and with 32 callers per core as a server has them. Every verify commits its consumed step and
// its audit event. Each caller owns a disjoint set of accounts and its own clock, which it moves
// one step on after using each of its accounts once, so replay protection never refuses.
func BenchmarkVerify(b *testing.B) {
	for _, par := range []int{1, 32} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			st, _ := storetest.SQLite(b)
			c := newClock()
			s := newService(b, st, c)
			const accounts = 512
			secrets := make([]string, accounts)
			for i := range secrets {
				secrets[i], _ = enrolled(b, s, c, fmt.Sprintf("bench%d", i))
			}
			base := recovery.Step(c.Now())
			var worker atomic.Int64
			ctx := context.Background()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := int(worker.Add(1) - 1)
				own := newClock()
				own.Set(time.Unix((base+1)*30+5, 0))
				svc := newService(b, st, own)
				var mine []int
				for i := w; i < accounts; i += par * runtime.GOMAXPROCS(0) {
					mine = append(mine, i)
				}
				if len(mine) == 0 {
					b.Error("more callers than accounts")
					return
				}
				for n := 0; pb.Next(); n++ {
					if n > 0 && n%len(mine) == 0 {
						own.Add(30 * time.Second)
					}
					i := mine[n%len(mine)]
					step := recovery.Step(own.Now())
					if _, err := svc.Verify(ctx, api, fmt.Sprintf("bench%d", i), code(b, secrets[i], step)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMatchStep is the verify path's check of one code against the three steps of the
// window; compare with three BenchmarkGenerateCode, what it cost before it keyed the HMAC once.
func BenchmarkMatchStep(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		if _, _, err := recovery.MatchStep(rfcSecret, "000000", now); err != nil {
			b.Fatal(err)
		}
	}
}
