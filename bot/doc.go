// Package bot is the Telegram bot through which users who lost their authenticator reach support
// (telegram-bot-api/v5; its fake Bot API server lives in bot/bottest). It talks to the console only
// through the recovery domain. Built in the Telegram bot issue.
package bot
