"""The shared layout's includes, rendered alone: escaping, labels and errors, paging, badges."""

import pytest

from app.web import i18n
from app.web.templating import environment


@pytest.fixture
def chinese():
    token = i18n.use(i18n.language_for("zh-CN"))
    yield
    i18n.reset(token)


def render(source: str, **values) -> str:
    return environment.from_string(source).render(**values)


def test_a_block_renders_alone_for_htmx(chinese):
    from jinja2_fragments import render_block

    html = render_block(
        environment,
        "web/sign_in.html",
        "content",
        {"next": "/", "username": "", "errors": {"form": "x"}, "csrf_token": "t", "path": "/sign-in"},
    )
    assert html.lstrip().startswith('<section class="panel panel--narrow">')
    assert "<html" not in html and 'name="csrf_token" value="t"' in html


def test_every_template_compiles():
    names = environment.list_templates(extensions=["html"])
    assert {"web/base.html", "web/error.html", "web/sign_in.html", "public/home.html"} <= set(names)
    for name in names:
        environment.get_template(name)


class TestField:
    SOURCE = '{% from "web/includes/field.html" import field %}{{ field(**args) }}'

    def test_user_input_is_escaped(self):
        html = render(
            self.SOURCE, args={"name": "title", "label": "Title", "value": '<script>alert("x")</script>'}
        )
        assert "<script>" not in html
        assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in html

    def test_the_label_hint_and_error_are_tied_to_the_input(self):
        html = render(
            self.SOURCE,
            args={
                "name": "code",
                "label": "Code",
                "hint": "12 digits",
                "error": "Too short",
                "required": True,
                "inputmode": "numeric",
            },
        )
        assert '<label for="f-code">Code<span class="required" aria-hidden="true"> *</span></label>' in html
        assert '<p class="field__hint" id="f-code-hint">12 digits</p>' in html
        assert '<p class="field__error" id="f-code-error">Too short</p>' in html
        assert 'aria-invalid="true" aria-describedby="f-code-hint f-code-error"' in html
        assert 'inputmode="numeric"' in html and " required" in html

    def test_a_password_is_never_echoed(self):
        html = render(
            self.SOURCE, args={"name": "pw", "label": "Password", "type": "password", "value": "secret"}
        )
        assert "secret" not in html

    def test_select_and_textarea(self):
        html = render(
            self.SOURCE,
            args={
                "name": "kind",
                "label": "Kind",
                "kind": "select",
                "value": "b",
                "options": [("a", "A"), ("b", "B")],
            },
        )
        assert '<option value="b" selected>B</option>' in html
        html = render(
            self.SOURCE, args={"name": "about", "label": "About", "kind": "textarea", "value": "<b>hi</b>"}
        )
        assert ">&lt;b&gt;hi&lt;/b&gt;</textarea>" in html


class TestPagedTable:
    SOURCE = '{% from "web/includes/table.html" import paged_table %}{{ paged_table(**args) }}'

    def test_rows_and_paging(self, chinese):
        html = render(
            self.SOURCE,
            args={
                "caption": "商户",
                "headers": ["名称", "状态"],
                "rows": [["<i>甲</i>", "已批准"]],
                "next_url": "/x?cursor=abc&limit=50",
                "first_url": "/x",
            },
        )
        # each cell names its column (a phone shows the rows as cards)
        assert (
            '<th scope="row" data-label="名称">&lt;i&gt;甲&lt;/i&gt;</th><td data-label="状态">已批准</td>'
            in html
        )
        assert (
            '<a class="button button--quiet" href="/x?cursor=abc&amp;limit=50" rel="next">下一页</a>' in html
        )
        assert ">第一页</a>" in html
        assert 'role="region" aria-label="商户"' in html

    def test_an_empty_table_says_so(self, chinese):
        html = render(self.SOURCE, args={"caption": "商户", "headers": ["名称", "状态"], "rows": []})
        assert '<td colspan="2" class="muted">暂无内容。</td>' in html
        assert "pager" not in html


class TestBadge:
    SOURCE = '{% from "web/includes/badge.html" import badge %}{{ badge(status) }}'

    def test_a_known_status_is_translated_with_its_tone(self, chinese):
        assert (
            render(self.SOURCE, status="approved").strip() == '<span class="badge badge--good">已批准</span>'
        )
        assert 'badge--bad">已暂停<' in render(self.SOURCE, status="suspended")

    def test_an_unknown_status_is_shown_as_it_is(self):
        assert (
            render(self.SOURCE, status="<odd>").strip()
            == '<span class="badge badge--neutral">&lt;odd&gt;</span>'
        )
