"""English texts. Values are HTML; placeholders get already-escaped user text."""

TEXTS: dict[str, str] = {
    "start": (
        "Hi, {name}! I keep your tasks and sync them to your tools.\n\n"
        "Add one: <code>/new Pay rent tomorrow 18:00 #home !1</code>\n"
        "See them: /list · Help: /help"
    ),
    "help": (
        "<b>Commands</b>\n"
        "/new &lt;text&gt; — add a task: words, a date (<i>tomorrow 18:00</i>, "
        "<i>in 2 hours</i>, <i>31.12 23:59</i>), <code>#tag</code>, "
        "<code>!1</code>..<code>!5</code>\n"
        "/list — open tasks\n"
        "/done &lt;id&gt; — mark a task done\n"
        "/health — server status (admins)\n"
        "/help — this message"
    ),
    "created": "✅ Saved task <b>#{id}</b>: {title}{details}",
    "created_syncing": "Syncing to {count} servers…",
    "no_tasks": "No open tasks. Add one with /new",
    "list_header": "<b>Open tasks</b> ({count})",
    "done": "✔️ Done: <b>#{id}</b> {title}",
    "already_done": "Task #{id} was already done.",
    "not_found": "I can't find task #{id} here.",
    "done_usage": "Which task? Example: <code>/done 12</code>",
    "new_usage": "What's the task? Example: <code>/new Pay rent tomorrow 18:00 #home !1</code>",
    "bad_input": "⚠️ {reason}",
    "bad_input_hint": "⚠️ {reason}\nTry for example: <code>{suggestion}</code>",
    "admins_only": "This command is for admins only.",
    "not_allowed": "Sorry, this bot is private.",
    "rate_limited": "You're sending commands too fast. Please wait {seconds} s and try again.",
    "error": "Something went wrong on my side. Nothing you typed was lost; please try again.",
    "unavailable": "That service is unavailable right now; I saved your request and will retry.",
    "health_header": "<b>Health</b>: {overall}",
    "task_failed": "❌ Task <b>#{id}</b> {title} could not be saved: {reason}. It was rolled back.",
    "alert": "🚨 <b>{server}</b>: {old} → <b>{new}</b>{detail}",
    "stale_button": "This button is out of date.",
    "deleted": "🗑 Deleted task <b>#{id}</b> {title}",
    "btn_done": "✅ Done",
    "btn_delete": "🗑 Delete",
    "due": "due {when}",
    "priority": "priority {p}",
    "unknown_command": "I don't know that command. See /help",
    "reasons.no_title": "The task needs a title.",
    "reasons.empty": "The task text is empty.",
    "reasons.too_long": "That is too long.",
    "reasons.bad_priority": "Priority goes from !1 (most urgent) to !5.",
    "reasons.date_in_past": "That date is in the past.",
    "reasons.ambiguous_date": "I can't tell which date you mean.",
    "reasons.bad_date": "That is not a real date.",
    "reasons.bad_state": "That task can't change any more.",
}
