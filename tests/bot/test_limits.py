"""Every message Kaika builds fits Discord's limits: the helper alone, then the bot end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import discord
import pytest
from discord import app_commands
from hypothesis import given
from hypothesis import strategies as st

from bot import limits
from bot.limits import ELLIPSIS, MemberText, fit, fit_choices, fit_embed, shorten
from bot.views import header, interrupted_notice
from storage.records import JobKind, JobRecord, JobStatus
from testkit import fake_discord
from testkit.fake_discord import SPEC_PATH
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, job_id_of

MENTION = "<@1100000000000000001>"
MARKDOWN = "*_~|>`\\"


def test_text_that_fits_is_left_alone():
    assert shorten("a lake", 6) == "a lake"
    assert fit("**", MemberText("a lake"), f"** — {MENTION}") == f"**a lake** — {MENTION}"


def test_a_cut_ends_with_an_ellipsis_and_never_splits_a_mention_timestamp_or_escape():
    assert shorten("a long lake", 8) == "a long…"
    assert shorten(f"hi {MENTION} there", 10) == "hi…"
    assert shorten("at <t:1767225600:R> then", 10) == "at…"
    assert shorten("a \\*b\\*", 4) == "a…"  # the cut would fall between "\" and "*"
    assert shorten("abc", 0) == ""


def test_the_members_text_is_escaped_and_shortened_so_the_bots_own_text_stays_whole():
    tail = f"** — {MENTION}\nDone in 1.0 s"
    content = fit("**", MemberText("*" * 3000), tail)
    assert len(content) == limits.CONTENT
    assert content.startswith("**\\*\\*") and content.endswith(f"\\*{ELLIPSIS}{tail}")
    shown = fit("x" * 1990, MemberText("<@1100000000000000001> @everyone"))
    assert "<@1" not in shown and "@everyone" not in shown  # escaped, so no ping


def test_several_member_texts_share_the_room_and_a_short_one_keeps_all_of_it():
    content = fit(
        MemberText("short"), " | ", MemberText("a" * 3000), " | ", MemberText("b" * 3000), limit=100
    )
    assert len(content) == 100
    short, first, second = content.split(" | ")
    assert short == "short" and abs(len(first) - len(second)) <= 1
    assert first.endswith(ELLIPSIS) and second.endswith(ELLIPSIS)
    assert fit(MemberText("a" * 200, at_most=80)) == "a" * 79 + ELLIPSIS


def test_the_bots_own_text_alone_too_long_is_cut_at_its_end():
    content = fit("Blocked terms: ", "word, " * 1000)
    assert len(content) == limits.CONTENT and content.endswith(ELLIPSIS)


@given(
    prompt=st.text(alphabet=st.sampled_from([*MARKDOWN, "a", " ", "@", "<", ">", "#", "-"]), max_size=1500),
    notes=st.lists(st.text(max_size=200), max_size=3),
    status=st.sampled_from(["Done in 3.2 s", "❌ " + "The job failed: out of memory. " * 20]),
)
def test_a_job_message_always_fits_and_keeps_its_mention(prompt, notes, status):
    content = fit(*header(prompt, JobKind.VARIATION, MENTION, notes), "\n", status)
    assert len(content) <= limits.CONTENT
    assert content.startswith("**")
    assert f"** (variations) — {MENTION}" in content or len(status) > 500  # only a huge status may cut it
    shown_prompt = content[2 : content.find("** (variations)")]
    trailing_backslashes = len(shown_prompt) - len(shown_prompt.rstrip("\\"))
    assert trailing_backslashes % 2 == 0  # no escape cut in half


def test_a_restart_notice_of_a_long_prompt_fits_and_names_its_requester():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    job = JobRecord(
        id="j1", kind=JobKind.IMAGINE, status=JobStatus.RUNNING, prompt="_" * 1000, negative_prompt="",
        params={}, seed=1, model=None, requester_id=7, owner_id=7, parent_job_id=None,
        parent_image_index=None, guild_id=5, channel_id=6, message_id=None, queued_at=now, started_at=now,
        finished_at=None, compute_seconds=None, error=None,
    )  # fmt: skip
    notice = interrupted_notice(job)
    assert len(notice) <= limits.CONTENT
    assert notice.startswith("<@7> Kaika restarted") and notice.endswith("Press 🔄 to run the prompt again.")


def test_an_embed_is_fitted_field_by_field_and_in_total():
    embed = discord.Embed(title="t" * 300, description="d" * 5000)
    for i in range(30):
        embed.add_field(name=f"name {i} " + "n" * 100, value=f"{MENTION} " + "v" * 2000)
    embed.set_footer(text="f" * 3000)
    embed.set_image(url="attachment://chart.png")
    fitted = fit_embed(embed)
    assert len(fitted) <= limits.EMBED_TOTAL and len(fitted.fields) == limits.EMBED_FIELDS
    # The title and field names stay whole (within their own limits); the long texts share the rest.
    assert len(fitted.title) == limits.EMBED_TITLE and fitted.fields[3].name == f"name 3 {'n' * 100}"
    values = [f.value for f in fitted.fields]
    assert all(value.startswith(MENTION) and value.endswith(ELLIPSIS) for value in values)
    assert max(map(len, values)) - min(map(len, values)) <= 2 and len(fitted.description) <= 200
    assert fitted.image.url == "attachment://chart.png"
    assert fake_discord.message_limit_errors({"embeds": [fitted.to_dict()]}) == {}

    names_alone_too_long = discord.Embed(title="t" * 256)
    for _ in range(25):
        names_alone_too_long.add_field(name="n" * 256, value="v")
    assert len(fit_embed(names_alone_too_long)) <= limits.EMBED_TOTAL
    small = discord.Embed(title="Kaika usage").add_field(name="Jobs", value="3")
    assert fit_embed(small).to_dict() == small.to_dict()


def test_autocomplete_offers_at_most_25_choices_with_names_discord_takes():
    names = [f"model-{i}" for i in range(30)] + ["m" * 150]
    choices = fit_choices(app_commands.Choice(name=n, value=n) for n in ["x" * 101, *names])
    assert [c.value for c in choices] == names[:25]  # a value too long to send back is left out
    named = fit_choices([app_commands.Choice(name="n" * 150, value="short")])
    assert named[0].name == "n" * 99 + ELLIPSIS and named[0].value == "short"


@pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Discord's OpenAPI spec is not at {SPEC_PATH}")
def test_the_limits_are_the_ones_discords_spec_publishes():
    schemas = json.loads(SPEC_PATH.read_text())["components"]["schemas"]

    def most(schema: str, prop: str) -> int:
        found = schemas[schema]["properties"][prop]
        return found.get("maxLength") or found["maxItems"]

    published = {
        (limits.CONTENT, fake_discord.CONTENT_MAX): most("IncomingWebhookUpdateRequestPartial", "content"),
        (limits.EMBED_TITLE, fake_discord.EMBED_TEXT_MAX["title"]): most("RichEmbed", "title"),
        (limits.EMBED_DESCRIPTION, fake_discord.EMBED_TEXT_MAX["description"]): most(
            "RichEmbed", "description"
        ),
        (limits.EMBED_FIELDS, fake_discord.EMBED_FIELDS_MAX): most("RichEmbed", "fields"),
        (limits.EMBED_FIELD_NAME, fake_discord.EMBED_FIELD_MAX["name"]): most("RichEmbedField", "name"),
        (limits.EMBED_FIELD_VALUE, fake_discord.EMBED_FIELD_MAX["value"]): most("RichEmbedField", "value"),
        (limits.EMBED_FOOTER, fake_discord.EMBED_FOOTER_MAX): most("RichEmbedFooter", "text"),
        (limits.EMBED_AUTHOR, fake_discord.EMBED_AUTHOR_MAX): most("RichEmbedAuthor", "name"),
        (limits.BUTTON_LABEL, fake_discord.BUTTON_MAX["label"]): most(
            "ButtonComponentForMessageRequest", "label"
        ),
        (limits.CHOICE_NAME, fake_discord.CHOICE_MAX["name"]): most(
            "ApplicationCommandOptionStringChoice", "name"
        ),
        (limits.CHOICES, fake_discord.CHOICES_MAX): most(
            "InteractionApplicationCommandAutocompleteCallbackStringData", "choices"
        ),
    }
    for (ours, fakes), theirs in published.items():
        assert ours == fakes == theirs


# ---- end to end ------------------------------------------------------------------------------------


async def test_a_long_markdown_prompt_gets_its_grid_in_a_message_discord_takes(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    # 995 characters that each need escaping: the header alone would be over 2000 characters.
    prompt = "*_~|`" * 199
    interaction = await kaika.imagine(ada, f"{prompt} --steps {FAST_STEPS}")
    message = await kaika.finished(interaction)

    assert fake.labels(int(message["id"])) == GRID_LABELS and message["attachments"]
    versions = [v["content"] for v in fake.message_versions[int(message["id"])]]
    assert all(len(content) <= 2000 for content in versions)
    content = message["content"]
    assert content.startswith("**\\*\\_\\~\\|\\`") and f"{ELLIPSIS}** — <@{ada.id}>\nDone" in content
    assert fake.over_limits == []
    job = await kaika.services.storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert job.status == "done" and job.prompt == prompt


async def test_the_failure_notice_of_a_long_prompt_is_shown(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    running = await kaika.started(ada, "|" * 1000 + " --steps 80")
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    await fake.slash(ada, "delete", job_id=job.id)
    message = await kaika.finished(running)
    assert message["content"].endswith("\n❌ This job was deleted.") and len(message["content"]) <= 2000


async def test_history_and_the_blocklist_fit_however_long_what_they_list(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    jobs = kaika.services.storage.jobs
    for i in range(10):
        job = await jobs.create("imagine", ada.id, prompt=f"{i} " + "~" * 998, guild_id=fake.guild_id)
        await jobs.set_message(job.id, fake.new_id(), fake.channel_id)
    history = await fake.slash(ada, "history")
    text = await fake.wait_until(lambda: fake.reply_text(history))
    lines = text.split("\n")
    assert len(text) <= 2000 and len(lines) == 10
    assert all(f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/" in line for line in lines)
    assert all(ELLIPSIS in line for line in lines)

    terms = [f"term{i} " + "x" * 90 for i in range(100)]
    await kaika.services.storage.guilds.update(fake.guild_id, blocklist=terms)
    listed = await fake.subcommand(fake.guild_owner, "admin blocklist list")
    text = await fake.wait_until(lambda: fake.reply_text(listed))
    assert len(text) <= 2000 and text.startswith("Blocked terms: term0") and text.endswith(ELLIPSIS)


async def test_model_autocomplete_fits_many_and_long_model_names(start_kaika, monkeypatch):
    kaika = await start_kaika()
    fake = kaika.fake
    names = [f"style-{i}" for i in range(40)] + ["style-" + "x" * 120]
    monkeypatch.setattr(type(kaika.services), "model_names", property(lambda self: names))
    interaction = await fake.wait_acked(
        await fake.autocomplete(fake.add_member("ada"), "imagine", "model", prompt="x", model="style")
    )
    assert interaction.response_type == 8
    assert [c["value"] for c in interaction.response["data"]["choices"]] == names[:25]
