//! Unit tests of the HTML → text conversion.

use super::to_text;

#[test]
fn blocks_break_lines() {
    assert_eq!(
        to_text("<div>一行目</div><div>二行目</div>"),
        "一行目\n二行目\n"
    );
    assert_eq!(to_text("<p>段落1</p><p>段落2</p>"), "段落1\n\n段落2\n");
    assert_eq!(to_text("a<br>b<br><br>c"), "a\nb\n\nc\n");
    assert_eq!(to_text("<h1>見出し</h1>本文"), "見出し\n\n本文\n");
    assert_eq!(to_text("前<hr>後"), "前\n後\n");
    assert_eq!(
        to_text(
            "<table><tr><td>名前</td><td>山田</td></tr><tr><td>電話</td><td>03</td></tr></table>"
        ),
        "名前 山田\n電話 03\n"
    );
}

#[test]
fn outlook_divs_and_empty_lines() {
    // Outlook on the web: one div a line, <div><br></div> an empty line, a trailing <br>
    // inside a block adds no line.
    let html = "<div>佐藤様</div><div><br></div><div>本文1</div><div>本文2<br></div>\n<div><br></div><div>山田</div>";
    assert_eq!(to_text(html), "佐藤様\n\n本文1\n本文2\n\n山田\n");
    // Never more than one blank line in a row.
    assert_eq!(
        to_text("a<br><br><br><br>b<p></p><p></p>c"),
        "a\n\nb\n\nc\n"
    );
}

#[test]
fn paragraphs_without_margins_are_lines() {
    // Word (Outlook desktop): MsoNormal paragraphs, &nbsp; paragraphs as the empty lines.
    let html = "<p class=MsoNormal>佐藤様<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
                <p class=MsoNormal>一行目<o:p></o:p></p><p class=MsoNormal>二行目<o:p></o:p></p>";
    assert_eq!(to_text(html), "佐藤様\n\n一行目\n二行目\n");
    // Outlook on the web's style sheet, and inline margins either way.
    let html = "<head><style> P {margin-top:0;margin-bottom:0;} </style></head><p>a</p><p>b</p>";
    assert_eq!(to_text(html), "a\nb\n");
    let html = "<style>p.x { margin: 0cm 0cm .0001pt }</style><p class=\"y x\">a</p><p class=x>b</p><p>c</p>";
    assert_eq!(to_text(html), "a\nb\n\nc\n");
    let html =
        "<p style=\"margin:0\">a</p><p style='margin-top:0; margin-bottom:12pt'>b</p><p>c</p>";
    assert_eq!(to_text(html), "a\nb\n\nc\n");
    let html = "<style>/* p {margin:0} */ p { margin: 1em 0 }</style><p class=MsoNormal style='margin-top:1em'>a</p><p>b</p>";
    assert_eq!(to_text(html), "a\n\nb\n");
}

#[test]
fn blockquotes_are_quoted() {
    let html = "<div>回答です。</div><div class=\"moz-cite-prefix\">On 11/30/26 10:05 AM, Desk wrote:<br></div>\
                <blockquote type=\"cite\"><p>質問1</p><p>質問2</p><blockquote>元<br>引用</blockquote></blockquote>後";
    assert_eq!(
        to_text(html),
        "回答です。\nOn 11/30/26 10:05 AM, Desk wrote:\n\n> 質問1\n>\n> 質問2\n>\n>> 元\n>> 引用\n後\n"
    );
    // Thunderbird's plain-text copy in <pre>: no blank line below the attribution.
    let html = "<div class=\"moz-cite-prefix\">On 11/30/26 10:05 AM, Desk wrote:<br>\n</div>\n\
                <blockquote type=\"cite\">\n<pre class=\"moz-quote-pre\">a\n\nb\n</pre>\n</blockquote>\n<br>";
    assert_eq!(
        to_text(html),
        "On 11/30/26 10:05 AM, Desk wrote:\n> a\n>\n> b\n"
    );
    // Deep nesting writes at most ten marks.
    let deep = format!("{}x", "<blockquote>".repeat(50));
    assert_eq!(to_text(&deep), format!("{} x\n", ">".repeat(10)));
}

#[test]
fn pre_keeps_white_space() {
    let html =
        "<pre class=\"moz-quote-pre\" wrap=\"\">\n行1\n  字下げ  &amp; 空白\n\n\n\n行2\n</pre>後";
    assert_eq!(to_text(html), "行1\n  字下げ  & 空白\n\n行2\n後\n");
}

#[test]
fn lists() {
    assert_eq!(
        to_text("<div>手順:</div><ol><li>停止</li><li>起動<ul><li>確認</ul></ol>以上"),
        "手順:\n1. 停止\n2. 起動\n  - 確認\n以上\n"
    );
    assert_eq!(
        to_text("<ol start=\"3\"><li>\n  三\n<li>四</ol>"),
        "3. 三\n4. 四\n"
    );
    // New Outlook wraps each item's text in a div: the marker stays on its line.
    assert_eq!(
        to_text(
            "<ol><li><div>a</div></li><li>\n<p>b</p>\n</li><li></li><li><div>c</div><div>d</div></li></ol>"
        ),
        "1. a\n2. b\n\n3.\n4. c\nd\n"
    );
}

#[test]
fn white_space_collapses() {
    assert_eq!(
        to_text("<body>\n    <p>  Hello,\n   <b>world</b> !  </p>\n  </body>"),
        "Hello, world !\n"
    );
    // A source line break between Japanese characters is no space; between words it is.
    assert_eq!(
        to_text("<p>分散サーバーが\n起動しません。\nRestart\nit</p>"),
        "分散サーバーが起動しません。 Restart it\n"
    );
    // A no-break space is kept; a line of them is empty.
    assert_eq!(
        to_text("<div>&nbsp;&nbsp;字下げ</div><div>&nbsp;</div><div>x</div>"),
        "  字下げ\n\nx\n"
    );
}

#[test]
fn entities() {
    assert_eq!(
        to_text(
            "&lt;a&gt; &amp;amp; &quot;&#12354;&#x3042;&#X3044;&hellip;&copy &nosuch; & &#; &#150;&#0;"
        ),
        "<a> &amp; \"ああい…© &nosuch; & &#; –\u{fffd}\n"
    );
    assert_eq!(to_text("&#99999999999;&#xD800;"), "\u{fffd}\u{fffd}\n");
}

#[test]
fn dropped_content() {
    let html = "<!DOCTYPE html><html><head><title>件名</title><meta charset=utf-8>\
                <style>p { color: red } /* </p> */ div > span { x: y }</style>\
                <script>if (a < b && c > d) { document.write('<p>x</p>') }</script></head>\
                <body><!-- comment <p>no</p> --><!--[if mso]>no<![endif]-->\
                <![if !supportLists]>・<![endif]>本文<template><p>no</p></template>\
                <span style=\"display: none !important\">preheader <span>no</span> no</span>\
                <div hidden>no</div><?xml:namespace prefix = o ?>end<img src=x alt=\"no\"></body></html>";
    assert_eq!(to_text(html), "・本文end\n");
}

#[test]
fn broken_markup_is_text_or_dropped() {
    assert_eq!(to_text("a < b > c"), "a < b > c\n");
    assert_eq!(to_text("x</>y</ p>z"), "xyz\n");
    assert_eq!(to_text("text<div class=\"unterminated"), "text\n");
    assert_eq!(to_text("text<!-- unterminated"), "text\n");
    assert_eq!(to_text("<style>unterminated"), "");
    assert_eq!(to_text("<a title='x>y'>link</a>"), "link\n");
    assert_eq!(to_text(""), "");
    assert_eq!(to_text("<p></p><div><br></div>"), "");
}

#[test]
fn deep_nesting_is_linear() {
    // 200,000 nested elements: no recursion, no quadratic scan.
    let n = 200_000;
    let html = format!(
        "{}x{}",
        "<div><ul><li>".repeat(n / 3),
        "</li></ul></div>".repeat(n / 3)
    );
    let text = to_text(&html);
    assert!(
        text.trim_end().ends_with("- x"),
        "{}",
        &text[text.len().saturating_sub(80)..]
    );
    let html = format!("{}x", "</span>".repeat(n));
    assert_eq!(to_text(&html), "x\n");
}
