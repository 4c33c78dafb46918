package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const agentHelp = `
Manage the support desk's agents.

  recoverydesk agent add --email E --name N --role R   create an agent and print a one-time setup link

Admins manage agents in the console afterwards (roles, disabling, new setup links).
Run 'recoverydesk agent COMMAND --help' for details.`

// agent runs the agent subcommands (agent add).
func (a *app) agent(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "add" {
		return a.agentAdd(ctx, args[1:])
	}
	fs := a.command("agent", "agent add [flags]", agentHelp)
	if err := a.parse(fs, "agent", args); err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("agent", "agent: missing command: add")
	}
	return usagef("agent", "agent: unknown command: use add")
}

func (a *app) agentAdd(ctx context.Context, args []string) error {
	fs := a.command("agent add", "agent add --email E --name N --role R [flags]", `
Create a support desk agent and print a one-time setup link (RECOVERYDESK_BASE_URL/setup/<token>)
valid for 24 hours. Send it to the agent over a channel you trust: whoever opens it first sets
the agent's password. The agent then signs in to the console and enrolls an authenticator app.
The link cannot be shown again (only its hash is stored); if it is lost or expires, an admin
issues a new one in the console.

Roles: agent (works tickets, requests resets), supervisor (also approves and executes resets),
admin (also unfreezes, acts on staff accounts and manages agents). On a new installation, add
the first admin here or with the link that serve prints.`)
	email := fs.String("email", "", "the agent's e-mail address (unique, compared case-insensitively)")
	name := fs.String("name", "", "the agent's name as the console and the audit show it")
	role := fs.String("role", "", "agent, supervisor or admin")
	pos, err := a.parseAll(fs, "agent add", args)
	if err != nil {
		return err
	}
	if err := wantArgs("agent add", pos); err != nil {
		return err
	}
	switch {
	case *email == "":
		return usagef("agent add", "agent add: --email is required")
	case *name == "":
		return usagef("agent add", "agent add: --name is required")
	case *role == "":
		return usagef("agent add", "agent add: --role is required: agent, supervisor or admin")
	case !recovery.ValidRole(*role):
		return usagef("agent add", "agent add: --role must be agent, supervisor or admin")
	}
	// Bad input is refused before the database is opened (or created).
	if err := recovery.CheckAgentInput(*email, *name, *role); err != nil {
		return usagef("agent add", "agent add: %s", invalidMessage(err))
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		ag, link, err := o.svc.CreateAgent(ctx, cliActor, *email, *name, *role)
		switch {
		case errors.Is(err, recovery.ErrEmailTaken):
			return errors.New("agent add: an agent with this e-mail exists already")
		case errors.Is(err, recovery.ErrInvalidInput):
			return usagef("agent add", "agent add: %s", invalidMessage(err))
		case err != nil:
			return fmt.Errorf("agent add: %w", err)
		}
		expires := ag.CreatedAt.Add(recovery.SetupLinkTTL).UTC().Format(time.RFC3339)
		fmt.Fprintf(a.stdout, "Created %s %s <%s> (id %s).\n", ag.Role, ag.Name, ag.Email, ag.ID)
		fmt.Fprintf(a.stdout, "Setup link (one use, expires %s):\n%s\n", expires, link)
		fmt.Fprintf(a.stdout, "It will not be shown again: send it to the agent over a channel you trust.\n")
		return nil
	})
}

// invalidMessage is the domain's message for bad input without the sentinel's prefix; it names
// the field and never quotes the value.
func invalidMessage(err error) string {
	return strings.TrimPrefix(err.Error(), recovery.ErrInvalidInput.Error()+": ")
}

// announceFirstAdmin prints, on a database without agents, the one-time /setup/<token> link that
// creates the first admin. The token is stored hashed and cannot be shown again, so every start
// before the link is used issues a new one and the earlier link stops working (the line says
// so); once an agent exists it prints nothing. baseURL is the public URL serve resolved for the
// address it listens on.
func (a *app) announceFirstAdmin(ctx context.Context, o *opened, baseURL string) error {
	link, expires, err := o.svc.IssueFirstAdminLink(ctx, recovery.Actor{Type: recovery.ActorSystem, ID: "serve"})
	if err != nil {
		return fmt.Errorf("first admin link: %w", err)
	}
	if link == "" {
		return nil
	}
	// The service builds links from the configured address; serve may listen on another port
	// (":0"), so the path is put on the URL serve resolved.
	if i := strings.Index(link, "/setup/"); i >= 0 {
		link = baseURL + link[i:]
	}
	fmt.Fprintf(a.stdout, "No agents yet: create the first admin at %s (one use, expires %s; a restart replaces this link).\n",
		link, expires.UTC().Format(time.RFC3339))
	return nil
}
