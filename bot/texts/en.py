"""English texts. Values are HTML; placeholders get already-escaped user text."""

TEXTS: dict[str, str] = {
    "start": (
        "Hi, {name}! I keep your tasks and sync them to your tools.\n\n"
        "Add one: <code>/new Pay rent tomorrow 18:00 #home !1</code>\n"
        "Or step by step: /new\n"
        "See them: /list · Help: /help"
    ),
    "help": (
        "<b>Tasks</b>\n"
        "/new &lt;text&gt; — add a task: words, a date (<i>tomorrow 18:00</i>, "
        "<i>in 2 hours</i>, <i>next friday</i>, <i>31.12 23:59</i>), <code>#tag</code>, "
        "<code>!1</code>..<code>!5</code>, <code>@user</code> in groups\n"
        "/new — the same, step by step\n"
        "/list — open tasks; <code>/list today</code>, <code>/list overdue</code>, "
        "<code>/list #tag</code>, <code>/list all</code>\n"
        "/task &lt;id&gt; — a task's card with buttons\n"
        "/done &lt;id&gt; — mark a task done\n"
        "/edit &lt;id&gt; [field value] — change title, deadline, priority, tags, "
        "description or assignee\n"
        "/deadline &lt;id&gt; &lt;when&gt; — set or clear (<i>none</i>) a deadline\n"
        "/delete &lt;id&gt; — delete, after you confirm\n"
        "/search &lt;words&gt; — find tasks\n"
        "/export — all tasks as JSON and CSV files\n\n"
        "<b>Time and calendar</b>\n"
        "/track &lt;id&gt; — start a timer; /stop — stop it\n"
        "/report — time spent today; <code>/report week</code>, <code>/report #tag</code>\n"
        "/calendar — deadlines of the next 7 days; <code>/export ics</code> — a calendar file\n"
        "/notify — task news to a webhook or e-mail too\n\n"
        "<b>Plans and knowledge</b>\n"
        "/split &lt;id&gt; step; step; … — break a task into steps, each a task\n"
        "/related &lt;id&gt; — tasks sharing its tags or people\n"
        "/history &lt;id&gt; — every change to a task\n"
        "/files &lt;id&gt; — its files and notes; reply to its card with a document to add one\n"
        "/note &lt;id&gt; &lt;text&gt; — add a note\n"
        "/search also finds by meaning: <code>/search pay the flat</code>\n\n"
        "<b>Settings</b>\n"
        "/tz &lt;Area/City&gt; — your time zone, e.g. <code>/tz Europe/Moscow</code>\n"
        "/lang en|ru — language\n"
        "/cancel — stop the current dialog\n"
        "/health — server status (admins)\n"
        "/backup — back up all data now (admins)"
    ),
    "cmd.start": "Start and see examples",
    "cmd.help": "All commands",
    "cmd.new": "Add a task",
    "cmd.list": "Tasks: today, overdue, #tag, all",
    "cmd.task": "Open a task card",
    "cmd.done": "Mark a task done",
    "cmd.edit": "Change a task",
    "cmd.deadline": "Set a deadline",
    "cmd.delete": "Delete a task",
    "cmd.search": "Find tasks by words",
    "cmd.export": "Download tasks as JSON and CSV",
    "cmd.remind": "When reminders come",
    "cmd.tz": "Set your time zone",
    "cmd.lang": "Language: en or ru",
    "cmd.cancel": "Stop the current dialog",
    "created": "✅ Saved task <b>#{id}</b>: {title}{details}",
    "created_syncing": "Syncing to {count} servers…",
    "no_tasks": "No open tasks. Add one with /new",
    "list_header": "<b>Open tasks</b> ({count})",
    "list.open": "<b>Open tasks</b> ({count})",
    "list.today": "<b>Due today</b> ({count})",
    "list.overdue": "<b>Overdue</b> ({count})",
    "list.all": "<b>All tasks</b> ({count})",
    "list.tag": "<b>Tagged #{tag}</b> ({count})",
    "list_empty": "Nothing here.",
    "page": "{page} / {pages}",
    "page_info": "Page {page} of {pages}",
    "btn_prev": "‹ Back",
    "btn_next": "Next ›",
    "btn_open": "Open",
    "btn_today": "Today",
    "btn_overdue": "Overdue",
    "btn_all": "All",
    "overdue_mark": "overdue",
    "card": "📌 <b>#{id}</b> {title}{details}",
    "card_status": "Status: {status}",
    "status.open": "open",
    "status.done": "done",
    "status.failed": "failed",
    "status.deleted": "deleted",
    "task_usage": "Which task? Example: <code>/task 12</code>",
    "done": "✔️ Done: <b>#{id}</b> {title}",
    "already_done": "Task #{id} was already done.",
    "not_found": "I can't find task #{id} here.",
    "done_usage": "Which task? Example: <code>/done 12</code>",
    "new_usage": "What's the task? Example: <code>/new Pay rent tomorrow 18:00 #home !1</code>",
    "snoozed": "⏰ Task <b>#{id}</b> is now due {when}",
    "timer_off": "Time tracking is not enabled.",
    "timer_on": "⏱ Timer started for #{id}.",
    "delete_usage": "Which task? Example: <code>/delete 12</code>",
    "delete_confirm": "Delete task <b>#{id}</b> {title}?",
    "btn_confirm_delete": "🗑 Yes, delete",
    "btn_keep": "Keep it",
    "kept": "Kept task #{id}.",
    "deleted": "🗑 Deleted task <b>#{id}</b> {title}",
    "deadline_usage": (
        "Example: <code>/deadline 12 tomorrow 18:00</code>, or <code>/deadline 12 none</code> "
        "to clear it"
    ),
    "deadline_set": "📅 Task <b>#{id}</b> is now due {when}",
    "deadline_cleared": "📅 Task <b>#{id}</b> has no deadline now",
    "edit_usage": (
        "Example: <code>/edit 12 title Pay the rent</code>. Fields: title, deadline, priority, "
        "tags, description, assignee. Or <code>/edit 12</code> to choose."
    ),
    "edit_pick": "What should change in <b>#{id}</b> {title}?",
    "ask.title": "Send the new title for <b>#{id}</b>.",
    "ask.deadline": (
        "When is <b>#{id}</b> due? For example: <i>tomorrow 18:00</i>, <i>in 2 hours</i>, "
        "or <i>none</i>."
    ),
    "ask.priority": "Priority for <b>#{id}</b>, from 1 (most urgent) to 5?",
    "ask.tags": "Tags for <b>#{id}</b>, like <code>#home #work</code>, or <i>none</i>?",
    "ask.description": "Send the description for <b>#{id}</b>, or <i>none</i>.",
    "ask.assignee": "Who does <b>#{id}</b>? Send <code>@username</code>, or <i>none</i>.",
    "field.title": "Title",
    "field.deadline": "Deadline",
    "field.priority": "Priority",
    "field.tags": "Tags",
    "field.description": "Description",
    "field.assignee": "Assignee",
    "edited": "✏️ Updated <b>#{id}</b> {title}{details}",
    "not_permitted": "Only the task's author, its assignee or a group admin can change it.",
    "wiz.title": "📝 New task. What is it? Send the title.",
    "wiz.deadline": (
        "📅 When is it due? For example: <i>tomorrow 18:00</i>, <i>in 2 hours</i>, "
        "<i>31.12 23:59</i>."
    ),
    "wiz.extras": "🏷 Tags and priority? For example: <code>#home !1</code>",
    "wiz.reply_hint": "\n<i>Reply to this message.</i>",
    "btn_skip": "Skip ›",
    "btn_cancel": "✖️ Cancel",
    "cancelled": "Cancelled. Nothing was saved.",
    "nothing_to_cancel": "There is nothing to cancel.",
    "search_usage": "What should I look for? Example: <code>/search rent</code>",
    "search_header": "<b>Found</b> ({count}):",
    "search_none": "Nothing matches <i>{words}</i>.",
    "tz_set": "🕑 Time zone: <b>{tz}</b>. It's {now} there now.",
    "tz_current": (
        "🕑 Your time zone: <b>{tz}</b> (it's {now}). To change it: <code>/tz Europe/Moscow</code>"
    ),
    "lang_set": "Language: English.",
    "lang_usage": "Choose one: <code>/lang en</code> or <code>/lang ru</code>",
    "export_caption": "📦 Tasks of this chat: {count}",
    "export_usage": (
        "I can't export <code>{what}</code>."
        " <code>/export</code> sends JSON and CSV, <code>/export ics</code> a calendar file."
    ),
    "export_empty": "There is nothing to export yet.",
    "use_new": (
        "To add a task, send <code>/new</code> with its text, or just /new to be asked "
        "step by step. All commands: /help"
    ),
    "repeat.daily": "🔁 every day {time}",
    "repeat.weekly": "🔁 every {day} {time}",
    "repeat.monthly": "🔁 monthly on day {day}, {time}",
    "repeat.unknown": "🔁 repeats",
    "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
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
    "btn_done": "✅ Done",
    "btn_delete": "🗑 Delete",
    "btn_snooze": "⏰ +1 h",
    "btn_timer": "⏱ Start timer",
    "btn_edit": "✏️ Edit",
    "due": "due {when}",
    "priority": "priority {p}",
    "unknown_command": "I don't know that command. See /help",
    "example.task": "Pay rent tomorrow 18:00",
    "example.tomorrow": "tomorrow {time}",
    "example.monthly": "every month on the 1st",
    "example.morning": "9am",
    "example.shorter": "a title of at most {limit} characters, e.g. Pay rent tomorrow 18:00",
    "reasons.no_title": "The task needs a title.",
    "reasons.empty": "The task text is empty.",
    "reasons.too_long": "That is too long.",
    "reasons.too_many_tags": "That is too many tags.",
    "reasons.bad_priority": "Priority goes from !1 (most urgent) to !5.",
    "reasons.date_in_past": "That date is in the past.",
    "reasons.ambiguous_date": "I can't tell which date you mean.",
    "reasons.bad_date": "That is not a real date.",
    "reasons.no_date": "I can't find a date in that.",
    "reasons.bad_state": "That task can't change any more.",
    "reasons.bad_tz": "I don't know that time zone; use Area/City.",
    "reasons.bad_lang": "I speak English (en) and Russian (ru).",
    "reasons.bad_field": "I can't change that field.",
    "reasons.bad_assignee": "Name the assignee as @username.",
    "reasons.invalid": "That doesn't look right.",
    # -- reminders (issue 6) --
    "reminder_due": "⏰ {late}Due now: <b>#{id}</b> {title}",
    "reminder_soon": "⏰ {late}<b>#{id}</b> {title}\ndue {when}, in {left}",
    "reminder_overdue": "⏰ {late}<b>#{id}</b> {title}\nwas due {when}",
    "reminder_plain": "⏰ {late}<b>#{id}</b> {title}",
    "reminder_late": "(late) ",
    "digest_header": "⏰ {late}<b>Overdue</b> ({count})",
    "digest_more": "…and more: /list",
    "btn_snooze_15": "💤 15 min",
    "btn_snooze_60": "💤 1 h",
    "btn_snooze_tomorrow": "💤 Tomorrow",
    "reminder_snoozed": "💤 Snoozed until {when}",
    "remind_current": (
        "🔔 I remind you {offsets}.\n"
        "Change: <code>/remind 1d 1h 15m</code> · only at the deadline: <code>/remind off</code>"
    ),
    "remind_saved": "🔔 Saved: I remind you {offsets}.",
    "remind_at_deadline": "at the deadline",
    "remind_before": "{spans} before and at the deadline",
    "span_d": "{n} d",
    "span_h": "{n} h",
    "span_m": "{n} min",
    "reasons.bad_offsets": "Reminder times look like 1d, 2h or 15m (at most five).",
    # -- planning and knowledge (issue 4) --
    "cmd.split": "Split a task into steps",
    "cmd.related": "Tasks sharing tags or people",
    "cmd.history": "A task's change history",
    "cmd.files": "A task's files and notes",
    "cmd.note": "Add a note to a task",
    "split_usage": (
        "Split a task into steps: <code>/split 12 Buy paint; Paint walls; Clean up</code> "
        "(or one step per line)."
    ),
    "split_header": "🪜 <b>#{id}</b> {title}: {count} steps",
    "split_planned": "🗺 Planned as a chain: each step waits for the one before.",
    "split_sync_off": "Planning sync is off: the steps are saved here only.",
    "split_sync_failed": (
        "⚠️ The planning server did not take the chain now; the steps are saved here "
        "and reach it as plain tasks."
    ),
    "btn_step_done": "✅ #{id} {title}",
    "reasons.too_many_steps": "That is too many steps for one split (20 at most).",
    "server_down": "{server} is not answering right now. Please try again in a minute.",
    "related_usage": "Which task? Example: <code>/related 12</code>",
    "related_header": "🔗 Related to <b>#{id}</b> {title}",
    "related_none": "No other task shares a tag or a person with #{id} yet.",
    "related_off": "The knowledge graph is not enabled.",
    "history_usage": "Which task? Example: <code>/history 12</code>",
    "history_header": "🕓 History of <b>#{id}</b> {title} ({count} commits)",
    "history_none": "No history for #{id} yet; changes reach it within seconds.",
    "history_off": "Change history (git) is not enabled.",
    "files_usage": "Which task? Example: <code>/files 12</code>",
    "files_header": "📎 Files of <b>#{id}</b> {title}",
    "files_notes": "🗒 Notes: {count}",
    "files_none": (
        "Nothing is kept with #{id} yet. Reply to its card with a document, or send one with "
        "the caption <code>/attach {id}</code>; add a note with <code>/note {id} text</code>."
    ),
    "files_off": "File storage is not enabled.",
    "attach_usage": (
        "To keep a file with a task, reply to the task's card with the file, or send it with "
        "the caption <code>/attach 12</code>."
    ),
    "attach_too_big": "That file is too big: {max} MB at most.",
    "attached": "📎 Saved <b>{name}</b> ({size}) with #{id}. See /files",
    "note_usage": "Example: <code>/note 12 Called the landlord, waiting for an answer</code>",
    "noted": "🗒 Note added to #{id}.",
    # -- calendar, time tracking, extra channels, backups (issue 4) --
    "cmd.calendar": "Deadlines of the next 7 days",
    "cmd.track": "Start a timer on a task",
    "cmd.stop": "Stop the running timer",
    "cmd.report": "Time spent: today, week, #tag",
    "cmd.notify": "Task news to a webhook or e-mail too",
    "calendar_off": "The calendar is not enabled.",
    "calendar_header": "📅 <b>Next 7 days</b> ({count})",
    "calendar_empty": "📅 Nothing is due in the next 7 days.",
    "export_ics_caption": (
        "📅 {count} tasks with deadlines. Open the file to add them to your calendar."
    ),
    "export_ics_empty": "No task here has a deadline, so there is nothing for a calendar.",
    "track_usage": "Which task? Example: <code>/track 12</code>",
    "track_started": "⏱ Timer started: {task}. Stop it with /stop",
    "track_running": "⏱ A timer is already running: {task}, {spent} so far. /stop it first.",
    "track_stopped": "⏹ Stopped: {task} — {spent}.",
    "track_none": "No timer is running. Start one: <code>/track 12</code>",
    "track_closed": "Task #{id} is not open, so it can't be timed.",
    "track_other_task": "a task of another chat",
    "report_today": "⏱ <b>Today</b>: {total}",
    "report_week": "⏱ <b>Last 7 days</b>: {total}",
    "report_tag": "⏱ <b>#{tag}</b>: {total}",
    "report_nothing": "No time tracked in this period.",
    "report_elsewhere": "▫️ in other chats — {spent}",
    "report_running": "⏱ Running now: {task}, {spent}",
    "report_usage": (
        "Examples: <code>/report</code> (today), <code>/report week</code>, "
        "<code>/report #work</code>"
    ),
    "notify_disabled": "Extra notification channels are not enabled.",
    "notify_none": (
        "🔔 This chat has no extra channels: its news comes only here.\n"
        "Add one: <code>/notify webhook https://example.com/hook</code> or "
        "<code>/notify email you@example.com</code>"
    ),
    "notify_current": (
        "🔔 This chat's news also goes to:\n{channels}\nRemove: <code>/notify off</code>"
    ),
    "notify_usage": (
        "Examples: <code>/notify webhook https://example.com/hook</code>, "
        "<code>/notify email you@example.com</code>, <code>/notify off</code>"
    ),
    "notify_saved": "🔔 Saved: {kind} <code>{target}</code>. A test message went through.",
    "notify_saved_failed": (
        "🔔 Saved: {kind} <code>{target}</code>, but the test message did not go through "
        "({error}). I'll keep trying."
    ),
    "notify_replaced": "One {kind} per chat: <code>{old}</code> is replaced.",
    "notify_off": "🔕 Extra channels removed: {count}.",
    "notify_admins": "Only a group admin can change where this group's news goes.",
    "channel.webhook": "webhook",
    "channel.email": "e-mail",
    "reasons.private_webhook": "That address is in a private network; use a public one.",
    "reasons.bad_webhook": "A webhook must be an http:// or https:// address.",
    "reasons.bad_email": "That is not an e-mail address.",
    "reasons.bad_channel": "That is not a usable address.",
    "backup_off": "Backups are not enabled.",
    "backup_done": "💾 Backup <code>{id}</code>: {size}, with {components}.",
    "backup_failed": "💾 The backup failed: {error}",
}
