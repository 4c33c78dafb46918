package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const demoHelp = `
Seed a demo desk into the database (created and migrated if needed), so that a newcomer sees a
living console within a minute: five agents (an admin, two supervisors, two agents) with known
passwords and TOTP secrets printed here, customers with and without 2FA, and recovery tickets in
every state, with six weeks of history for the dashboard. Everything is made through the real
workflow (checklists, two-person approval with step-up, cooling-off, veto, reset, re-enrollment),
so the audit chain verifies.

Sign in to the console at RECOVERYDESK_BASE_URL/console with a printed e-mail and password, and
compute the code from the printed secret, e.g.:  oathtool --totp -b SECRET

Notices (veto links, re-enrollment links) wait in the outbox; serve delivers them (without SMTP,
as .eml files in recoverydesk-mail/ beside the database).

Running it again does nothing: it says that the demo exists. NEVER on a real desk: the printed
passwords and secrets are credentials. 'recoverydesk serve --demo' seeds and then serves.`

// demo is `recoverydesk demo`: seed the demo desk into the configured database.
func (a *app) demo(ctx context.Context, args []string) error {
	fs := a.command("demo", "demo [flags]", demoHelp)
	pos, err := a.parseAll(fs, "demo", args)
	if err != nil {
		return err
	}
	if err := wantArgs("demo", pos); err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate, auditKey: true}, func(o *opened) error {
		return a.seedDemo(ctx, o, cfg.resolveBaseURL(cfg.Addr))
	})
}

// seedDemo seeds the demo desk and prints its credentials; on a database that has it, it says
// so and changes nothing.
func (a *app) seedDemo(ctx context.Context, o *opened, baseURL string) error {
	cfg := o.cfg
	var policy *recovery.Policy
	if cfg.PolicyFile != "" {
		var err error
		if policy, err = recovery.LoadPolicyFile(cfg.PolicyFile); err != nil {
			return fmt.Errorf("RECOVERYDESK_POLICY_FILE: %w", err)
		}
	}
	// The demo runs its own seeding clock in the past and ends at the real time, which cmd owns.
	res, err := recovery.SeedDemo(ctx, o.store, recovery.Options{Now: a.now, Keys: o.keys, Issuer: cfg.Issuer,
		BaseURL: baseURL, HostWebhook: cfg.HostWebhookURL != "", Policy: policy})
	if err != nil {
		return err
	}
	if res.Existed {
		fmt.Fprintf(a.stdout, "The demo desk exists already (agent %s): nothing was done.\n", recovery.DemoMarkerEmail)
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Demo desk seeded at %s.\n\nTickets:", baseURL)
	total := 0
	for _, st := range demoStates {
		if n := res.Tickets[st]; n > 0 {
			fmt.Fprintf(&b, " %s %d,", st, n)
			total += n
		}
	}
	fmt.Fprintf(&b, " %d in all.\n\n", total)
	fmt.Fprintf(&b, "Agents: sign in at %s/console; codes: oathtool --totp -b SECRET\n", baseURL)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tE-MAIL\tPASSWORD\tTOTP SECRET")
	for _, ag := range res.Agents {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ag.Role, ag.Email, ag.Password, ag.Secret)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nCustomers (the end-user pages at %s/account):\n", baseURL)
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACCOUNT\tE-MAIL\tPASSWORD\tTOTP SECRET")
	for _, c := range res.Customers {
		secret := c.Secret
		if secret == "" {
			secret = "(no 2FA yet)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.ID, c.Email, c.Password, secret)
	}
	tw.Flush()
	b.WriteString("\nThese are demo credentials: never seed a real desk.\n")
	_, err = fmt.Fprint(a.stdout, b.String())
	return err
}

// demoStates orders the ticket counts as the workflow does.
var demoStates = []recovery.TicketState{recovery.TicketOpen, recovery.TicketVerifying, recovery.TicketPendingApproval,
	recovery.TicketCoolingOff, recovery.TicketReady, recovery.TicketExecuted, recovery.TicketClosed, recovery.TicketRejected,
	recovery.TicketFrozen, recovery.TicketWithdrawn, recovery.TicketExpired}
