"""Русские тексты. Значения в HTML; подстановки уже экранированы."""

TEXTS: dict[str, str] = {
    "start": (
        "Привет, {name}! Я храню ваши задачи и синхронизирую их с вашими сервисами.\n\n"
        "Добавить: <code>/new Оплатить аренду завтра в 18:00 #дом !1</code>\n"
        "Или по шагам: /new\n"
        "Список: /list · Помощь: /help"
    ),
    "help": (
        "<b>Задачи</b>\n"
        "/new &lt;текст&gt; — новая задача: слова, дата (<i>завтра в 18:00</i>, "
        "<i>через 2 часа</i>, <i>в пятницу</i>, <i>31.12 23:59</i>), <code>#тег</code>, "
        "<code>!1</code>..<code>!5</code>, <code>@user</code> в группах\n"
        "/new — то же самое по шагам\n"
        "/list — открытые задачи; <code>/list сегодня</code>, <code>/list просрочено</code>, "
        "<code>/list #тег</code>, <code>/list все</code>\n"
        "/task &lt;номер&gt; — карточка задачи с кнопками\n"
        "/done &lt;номер&gt; — отметить выполненной\n"
        "/edit &lt;номер&gt; [поле значение] — изменить название, срок, приоритет, теги, "
        "описание или исполнителя\n"
        "/deadline &lt;номер&gt; &lt;когда&gt; — назначить или снять (<i>нет</i>) срок\n"
        "/delete &lt;номер&gt; — удалить после подтверждения\n"
        "/search &lt;слова&gt; — найти задачи\n"
        "/export — все задачи файлами JSON и CSV\n\n"
        "<b>Время и календарь</b>\n"
        "/track &lt;номер&gt; — запустить таймер; /stop — остановить\n"
        "/report — время за сегодня; <code>/report week</code>, <code>/report #тег</code>\n"
        "/calendar — сроки на 7 дней; <code>/export ics</code> — файл для календаря\n"
        "/notify — новости задач также в вебхук или на почту\n\n"
        "<b>Планы и знания</b>\n"
        "/split &lt;номер&gt; шаг; шаг; … — разбить задачу на шаги-задачи\n"
        "/related &lt;номер&gt; — задачи с теми же тегами или людьми\n"
        "/history &lt;номер&gt; — все изменения задачи\n"
        "/files &lt;номер&gt; — файлы и заметки; ответьте документом на карточку, чтобы добавить\n"
        "/note &lt;номер&gt; &lt;текст&gt; — добавить заметку\n"
        "/search ищет и по смыслу: <code>/search оплатить квартиру</code>\n\n"
        "<b>Настройки</b>\n"
        "/tz &lt;Регион/Город&gt; — часовой пояс, например <code>/tz Europe/Moscow</code>\n"
        "/lang en|ru — язык\n"
        "/cancel — прервать текущий диалог\n"
        "/health — состояние серверов (для админов)\n"
        "/backup — резервная копия всех данных (для админов)"
    ),
    "cmd.start": "Начать и посмотреть примеры",
    "cmd.help": "Все команды",
    "cmd.new": "Новая задача",
    "cmd.list": "Задачи: сегодня, просроченные, #тег, все",
    "cmd.task": "Карточка задачи",
    "cmd.done": "Отметить выполненной",
    "cmd.edit": "Изменить задачу",
    "cmd.deadline": "Назначить срок",
    "cmd.delete": "Удалить задачу",
    "cmd.search": "Найти задачи по словам",
    "cmd.export": "Скачать задачи в JSON и CSV",
    "cmd.remind": "Когда напоминать",
    "cmd.tz": "Часовой пояс",
    "cmd.lang": "Язык: en или ru",
    "cmd.cancel": "Прервать текущий диалог",
    "created": "✅ Задача <b>#{id}</b> сохранена: {title}{details}",
    "created_syncing": "Синхронизирую с {count} серверами…",
    "no_tasks": "Открытых задач нет. Добавьте: /new",
    "list_header": "<b>Открытые задачи</b> ({count})",
    "list.open": "<b>Открытые задачи</b> ({count})",
    "list.today": "<b>На сегодня</b> ({count})",
    "list.overdue": "<b>Просроченные</b> ({count})",
    "list.all": "<b>Все задачи</b> ({count})",
    "list.tag": "<b>С тегом #{tag}</b> ({count})",
    "list_empty": "Здесь пусто.",
    "page": "{page} / {pages}",
    "page_info": "Страница {page} из {pages}",
    "btn_prev": "‹ Назад",
    "btn_next": "Дальше ›",
    "btn_open": "Открытые",
    "btn_today": "Сегодня",
    "btn_overdue": "Просрочено",
    "btn_all": "Все",
    "overdue_mark": "просрочено",
    "card": "📌 <b>#{id}</b> {title}{details}",
    "card_status": "Статус: {status}",
    "status.open": "открыта",
    "status.done": "выполнена",
    "status.failed": "не сохранена",
    "status.deleted": "удалена",
    "task_usage": "Какую задачу? Например: <code>/task 12</code>",
    "done": "✔️ Выполнено: <b>#{id}</b> {title}",
    "already_done": "Задача #{id} уже выполнена.",
    "not_found": "Не нахожу задачу #{id} в этом чате.",
    "done_usage": "Какую задачу? Например: <code>/done 12</code>",
    "new_usage": "Какая задача? Например: <code>/new Оплатить аренду завтра в 18:00 #дом !1</code>",
    "snoozed": "⏰ Задача <b>#{id}</b> теперь к сроку {when}",
    "timer_off": "Учёт времени не подключён.",
    "timer_on": "⏱ Таймер для #{id} запущен.",
    "delete_usage": "Какую задачу? Например: <code>/delete 12</code>",
    "delete_confirm": "Удалить задачу <b>#{id}</b> {title}?",
    "btn_confirm_delete": "🗑 Да, удалить",
    "btn_keep": "Оставить",
    "kept": "Задача #{id} оставлена.",
    "deleted": "🗑 Задача <b>#{id}</b> {title} удалена",
    "deadline_usage": (
        "Например: <code>/deadline 12 завтра в 18:00</code> или <code>/deadline 12 нет</code>, "
        "чтобы снять срок"
    ),
    "deadline_set": "📅 Задача <b>#{id}</b> теперь к сроку {when}",
    "deadline_cleared": "📅 У задачи <b>#{id}</b> больше нет срока",
    "edit_usage": (
        "Например: <code>/edit 12 название Оплатить аренду</code>. Поля: название, срок, "
        "приоритет, теги, описание, исполнитель. Или <code>/edit 12</code>, чтобы выбрать."
    ),
    "edit_pick": "Что изменить в задаче <b>#{id}</b> {title}?",
    "ask.title": "Пришлите новое название для <b>#{id}</b>.",
    "ask.deadline": (
        "Когда срок у <b>#{id}</b>? Например: <i>завтра в 18:00</i>, <i>через 2 часа</i> "
        "или <i>нет</i>."
    ),
    "ask.priority": "Приоритет для <b>#{id}</b>, от 1 (самый срочный) до 5?",
    "ask.tags": "Теги для <b>#{id}</b>, например <code>#дом #работа</code>, или <i>нет</i>?",
    "ask.description": "Пришлите описание для <b>#{id}</b> или <i>нет</i>.",
    "ask.assignee": "Кто выполняет <b>#{id}</b>? Пришлите <code>@username</code> или <i>нет</i>.",
    "field.title": "Название",
    "field.deadline": "Срок",
    "field.priority": "Приоритет",
    "field.tags": "Теги",
    "field.description": "Описание",
    "field.assignee": "Исполнитель",
    "edited": "✏️ Задача <b>#{id}</b> изменена: {title}{details}",
    "not_permitted": "Менять задачу могут только её автор, исполнитель или админ группы.",
    "wiz.title": "📝 Новая задача. Что нужно сделать? Пришлите название.",
    "wiz.deadline": (
        "📅 Какой срок? Например: <i>завтра в 18:00</i>, <i>через 2 часа</i>, <i>31.12 23:59</i>."
    ),
    "wiz.extras": "🏷 Теги и приоритет? Например: <code>#дом !1</code>",
    "wiz.reply_hint": "\n<i>Ответьте на это сообщение.</i>",
    "btn_skip": "Пропустить ›",
    "btn_cancel": "✖️ Отмена",
    "cancelled": "Отменено. Ничего не сохранено.",
    "nothing_to_cancel": "Отменять нечего.",
    "search_usage": "Что искать? Например: <code>/search аренда</code>",
    "search_header": "<b>Найдено</b> ({count}):",
    "search_none": "Ничего не нашлось по запросу <i>{words}</i>.",
    "tz_set": "🕑 Часовой пояс: <b>{tz}</b>. Там сейчас {now}.",
    "tz_current": (
        "🕑 Ваш часовой пояс: <b>{tz}</b> (сейчас {now}). Сменить: <code>/tz Europe/Moscow</code>"
    ),
    "lang_set": "Язык: русский.",
    "lang_usage": "Выберите: <code>/lang en</code> или <code>/lang ru</code>",
    "export_caption": "📦 Задачи этого чата: {count}",
    "export_usage": (
        "Не умею выгружать <code>{what}</code>."
        " <code>/export</code> присылает JSON и CSV, <code>/export ics</code> — файл календаря."
    ),
    "export_empty": "Экспортировать пока нечего.",
    "use_new": (
        "Чтобы добавить задачу, пришлите <code>/new</code> и её текст или просто /new, "
        "и я спрошу по шагам. Все команды: /help"
    ),
    "repeat.daily": "🔁 каждый день {time}",
    "repeat.weekly": "🔁 еженедельно, {day} {time}",
    "repeat.monthly": "🔁 каждый месяц {day} числа, {time}",
    "repeat.unknown": "🔁 повторяется",
    "weekdays": "Пн Вт Ср Чт Пт Сб Вс",
    "bad_input": "⚠️ {reason}",
    "bad_input_hint": "⚠️ {reason}\nНапример: <code>{suggestion}</code>",
    "admins_only": "Эта команда только для администраторов.",
    "not_allowed": "Извините, это закрытый бот.",
    "rate_limited": "Слишком много команд подряд. Подождите {seconds} с и попробуйте снова.",
    "error": "Что-то пошло не так у меня. Ваш ввод не потерян; попробуйте ещё раз.",
    "unavailable": "Сервис сейчас недоступен; запрос сохранён, я повторю попытку.",
    "health_header": "<b>Состояние</b>: {overall}",
    "task_failed": (
        "❌ Задачу <b>#{id}</b> {title} сохранить не удалось: {reason}. Изменения отменены."
    ),
    "alert": "🚨 <b>{server}</b>: {old} → <b>{new}</b>{detail}",
    "stale_button": "Эта кнопка устарела.",
    "btn_done": "✅ Готово",
    "btn_delete": "🗑 Удалить",
    "btn_snooze": "⏰ +1 ч",
    "btn_timer": "⏱ Таймер",
    "btn_edit": "✏️ Изменить",
    "due": "срок {when}",
    "priority": "приоритет {p}",
    "unknown_command": "Не знаю такой команды. См. /help",
    "example.task": "Оплатить аренду завтра 18:00",
    "example.tomorrow": "завтра {time}",
    "example.monthly": "каждый месяц 1 числа",
    "example.morning": "9:00",
    "example.shorter": (
        "название не длиннее {limit} символов, например: Оплатить аренду завтра 18:00"
    ),
    "reasons.no_title": "У задачи должно быть название.",
    "reasons.empty": "Текст задачи пуст.",
    "reasons.too_long": "Слишком длинно.",
    "reasons.too_many_tags": "Слишком много тегов.",
    "reasons.bad_priority": "Приоритет от !1 (самый срочный) до !5.",
    "reasons.date_in_past": "Эта дата уже прошла.",
    "reasons.ambiguous_date": "Не понимаю, какая это дата.",
    "reasons.bad_date": "Такой даты не бывает.",
    "reasons.no_date": "Не нахожу здесь даты.",
    "reasons.bad_state": "Эту задачу уже нельзя изменить.",
    "reasons.bad_tz": "Не знаю такого часового пояса; укажите Регион/Город.",
    "reasons.bad_lang": "Я говорю по-английски (en) и по-русски (ru).",
    "reasons.bad_field": "Это поле изменить нельзя.",
    "reasons.bad_assignee": "Укажите исполнителя как @username.",
    "reasons.invalid": "Что-то здесь не так.",
    # -- напоминания (задача 6) --
    "reminder_due": "⏰ {late}Срок наступил: <b>#{id}</b> {title}",
    "reminder_soon": "⏰ {late}<b>#{id}</b> {title}\nсрок {when}, через {left}",
    "reminder_overdue": "⏰ {late}<b>#{id}</b> {title}\nсрок был {when}",
    "reminder_plain": "⏰ {late}<b>#{id}</b> {title}",
    "reminder_late": "(с опозданием) ",
    "digest_header": "⏰ {late}<b>Просрочено</b> ({count})",
    "digest_more": "…и другие: /list",
    "btn_snooze_15": "💤 15 мин",
    "btn_snooze_60": "💤 1 ч",
    "btn_snooze_tomorrow": "💤 Завтра",
    "reminder_snoozed": "💤 Отложено до {when}",
    "remind_current": (
        "🔔 Напоминаю {offsets}.\n"
        "Изменить: <code>/remind 1d 1h 15m</code> · только в срок: <code>/remind off</code>"
    ),
    "remind_saved": "🔔 Сохранено: напоминаю {offsets}.",
    "remind_at_deadline": "в момент срока",
    "remind_before": "за {spans} и в момент срока",
    "span_d": "{n} д",
    "span_h": "{n} ч",
    "span_m": "{n} мин",
    "reasons.bad_offsets": "Время напоминаний пишется как 1d, 2h или 15m (не больше пяти).",
    # -- планирование и знания (задача 4) --
    "cmd.split": "Разбить задачу на шаги",
    "cmd.related": "Задачи с общими тегами и людьми",
    "cmd.history": "История изменений задачи",
    "cmd.files": "Файлы и заметки задачи",
    "cmd.note": "Добавить заметку к задаче",
    "split_usage": (
        "Разбить задачу на шаги: <code>/split 12 Купить краску; Покрасить стены; Убрать</code> "
        "(или по шагу на строку)."
    ),
    "split_header": "🪜 <b>#{id}</b> {title}: шагов {count}",
    "split_planned": "🗺 Запланировано цепочкой: каждый шаг ждёт предыдущего.",
    "split_sync_off": "Синхронизация планов выключена: шаги сохранены только здесь.",
    "split_sync_failed": (
        "⚠️ Сервер планирования сейчас не принял цепочку; шаги сохранены здесь "
        "и попадут туда как обычные задачи."
    ),
    "btn_step_done": "✅ #{id} {title}",
    "reasons.too_many_steps": "Слишком много шагов для одного разбиения (не больше 20).",
    "server_down": "{server} сейчас не отвечает. Попробуйте через минуту.",
    "related_usage": "Какая задача? Например: <code>/related 12</code>",
    "related_header": "🔗 Связано с <b>#{id}</b> {title}",
    "related_none": "Пока ни одна задача не делит с #{id} тег или человека.",
    "related_off": "Граф знаний не включён.",
    "history_usage": "Какая задача? Например: <code>/history 12</code>",
    "history_header": "🕓 История <b>#{id}</b> {title} (коммитов: {count})",
    "history_none": "У #{id} пока нет истории; изменения попадают туда за секунды.",
    "history_off": "История изменений (git) не включена.",
    "files_usage": "Какая задача? Например: <code>/files 12</code>",
    "files_header": "📎 Файлы <b>#{id}</b> {title}",
    "files_notes": "🗒 Заметок: {count}",
    "files_none": (
        "С #{id} пока ничего не хранится. Ответьте на её карточку документом или пришлите его "
        "с подписью <code>/attach {id}</code>; заметка: <code>/note {id} текст</code>."
    ),
    "files_off": "Хранение файлов не включено.",
    "attach_usage": (
        "Чтобы сохранить файл с задачей, ответьте файлом на её карточку или пришлите его "
        "с подписью <code>/attach 12</code>."
    ),
    "attach_too_big": "Файл слишком большой: не больше {max} МБ.",
    "attached": "📎 Сохранил <b>{name}</b> ({size}) с #{id}. Смотрите /files",
    "note_usage": "Например: <code>/note 12 Позвонил арендодателю, жду ответа</code>",
    "noted": "🗒 Заметка добавлена к #{id}.",
    # -- календарь, учёт времени, доп. каналы, резервные копии (задача 4) --
    "cmd.calendar": "Сроки на 7 дней вперёд",
    "cmd.track": "Запустить таймер задачи",
    "cmd.stop": "Остановить таймер",
    "cmd.report": "Затраченное время: сегодня, неделя, #тег",
    "cmd.notify": "Новости задач также в вебхук или почту",
    "calendar_off": "Календарь не подключён.",
    "calendar_header": "📅 <b>Ближайшие 7 дней</b> ({count})",
    "calendar_empty": "📅 В ближайшие 7 дней сроков нет.",
    "export_ics_caption": (
        "📅 Задач со сроком: {count}. Откройте файл, чтобы добавить их в свой календарь."
    ),
    "export_ics_empty": "Ни у одной задачи здесь нет срока, в календарь добавить нечего.",
    "track_usage": "Какая задача? Например: <code>/track 12</code>",
    "track_started": "⏱ Таймер запущен: {task}. Остановить: /stop",
    "track_running": "⏱ Уже идёт таймер: {task}, прошло {spent}. Сначала /stop.",
    "track_stopped": "⏹ Остановлено: {task} — {spent}.",
    "track_none": "Таймер не запущен. Запустить: <code>/track 12</code>",
    "track_closed": "Задача #{id} не открыта, засекать по ней время нельзя.",
    "track_other_task": "задача другого чата",
    "report_today": "⏱ <b>Сегодня</b>: {total}",
    "report_week": "⏱ <b>За 7 дней</b>: {total}",
    "report_tag": "⏱ <b>#{tag}</b>: {total}",
    "report_nothing": "За этот период время не учитывалось.",
    "report_elsewhere": "▫️ в других чатах — {spent}",
    "report_running": "⏱ Идёт сейчас: {task}, {spent}",
    "report_usage": (
        "Например: <code>/report</code> (сегодня), <code>/report week</code>, "
        "<code>/report #работа</code>"
    ),
    "notify_disabled": "Дополнительные каналы уведомлений не подключены.",
    "notify_none": (
        "🔔 У этого чата нет дополнительных каналов: новости приходят только сюда.\n"
        "Добавить: <code>/notify webhook https://example.com/hook</code> или "
        "<code>/notify email you@example.com</code>"
    ),
    "notify_current": (
        "🔔 Новости этого чата также идут:\n{channels}\nУбрать: <code>/notify off</code>"
    ),
    "notify_usage": (
        "Например: <code>/notify webhook https://example.com/hook</code>, "
        "<code>/notify email you@example.com</code>, <code>/notify off</code>"
    ),
    "notify_saved": "🔔 Сохранено: {kind} <code>{target}</code>. Проверочное сообщение дошло.",
    "notify_saved_failed": (
        "🔔 Сохранено: {kind} <code>{target}</code>, но проверочное сообщение не дошло "
        "({error}). Буду пробовать ещё."
    ),
    "notify_replaced": "В чате один {kind}: <code>{old}</code> заменён.",
    "notify_off": "🔕 Дополнительные каналы убраны: {count}.",
    "notify_admins": "Куда идут новости группы, меняют только её админы.",
    "channel.webhook": "вебхук",
    "channel.email": "почта",
    "reasons.private_webhook": "Этот адрес во внутренней сети; нужен публичный.",
    "reasons.bad_webhook": "Вебхук — это адрес http:// или https://.",
    "reasons.bad_email": "Это не адрес электронной почты.",
    "reasons.bad_channel": "По такому адресу отправить нельзя.",
    "backup_off": "Резервные копии не подключены.",
    "backup_done": "💾 Копия <code>{id}</code>: {size}, включает {components}.",
    "backup_failed": "💾 Копию сделать не удалось: {error}",
}
