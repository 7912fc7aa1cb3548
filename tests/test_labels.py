"""User text placed where Streamlit reads Markdown, or plotly reads HTML, shows as typed."""

from core.explorer.labels import markdown_literal, plot_text, short


def test_markdown_literal_escapes_what_would_render_and_leaves_plain_text_alone() -> None:
    assert markdown_literal("line 1: expected_ids must be a non-empty list") == "line 1: expected_ids must be a non-empty list"
    assert markdown_literal("![pixel](http://evil.example/p.png)") == r"\!\[pixel\](http://evil.example/p.png)"
    assert markdown_literal("**bold** $x^2$ <b>h</b> :material/home: _it_") == (
        r"\*\*bold\*\* \$x^2\$ \<b\>h\</b\> \:material/home: \_it\_"
    )
    assert markdown_literal("# title") == r"\# title"
    assert markdown_literal("1. first") == r"1\. first"
    assert markdown_literal("two\nlines") == "two lines"


def test_plot_text_escapes_html_and_wraps() -> None:
    assert plot_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert plot_text("word " * 20, width=20).count("<br>") == 4
    assert short("a  b\nc " * 40, 10) == "a b c a b…"
