//! `format=flowed` text/plain (RFC 3676) back to the lines its writer typed. mail-parser hands
//! the body over as sent, soft line breaks and all.
//!
//! - A line's quote depth is the number of `>` it starts with; after them (or at the start of
//!   an unquoted line) one space is space-stuffing and is removed.
//! - A line that then ends in a space is flowed: it joins the next line of the same depth into
//!   one line. With `DelSp=yes` that trailing space is deleted first (it was added to break a
//!   line without spaces, such as Japanese). A flowed line before a line of another depth, or
//!   before the signature separator, ends its paragraph.
//! - The signature separator `-- ` is never flowed.
//! - Quoted lines are written back as `>` marks, a space and the text (`>` alone when empty),
//!   so `>> text` for depth two; a paragraph that ended on a flowed line loses its trailing
//!   spaces.

/// The decoded text of a `format=flowed` body, lines ending in `\n` (a last line without one
/// stays without).
pub(crate) fn decode(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<(usize, String)> = None;
    for raw in text.lines() {
        let depth = raw.bytes().take_while(|&b| b == b'>').count();
        let content = raw.get(depth..).unwrap_or_default();
        let content = content.strip_prefix(' ').unwrap_or(content);
        let signature = content == "-- ";
        let flowed = !signature && content.ends_with(' ');
        if let Some((d, para)) = open.take_if(|(d, _)| *d != depth || signature) {
            write_line(&mut out, d, para.trim_end_matches(' '));
        }
        let piece = match content.strip_suffix(' ') {
            Some(kept) if flowed && delsp => kept,
            _ => content,
        };
        let (d, mut para) = open.take().unwrap_or((depth, String::new()));
        para.push_str(piece);
        if flowed {
            open = Some((d, para));
        } else {
            write_line(&mut out, d, &para);
        }
    }
    if let Some((d, para)) = open {
        write_line(&mut out, d, para.trim_end_matches(' '));
    }
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn write_line(out: &mut String, depth: usize, line: &str) {
    out.extend(std::iter::repeat_n('>', depth));
    if depth > 0 && !line.is_empty() {
        out.push(' ');
    }
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn soft_breaks_join() {
        let text = "This is a long \nparagraph of \ntext.\n\nNext one.\n";
        assert_eq!(
            decode(text, false),
            "This is a long paragraph of text.\n\nNext one.\n"
        );
        assert_eq!(
            decode(text, true),
            "This is a longparagraph oftext.\n\nNext one.\n"
        );
    }

    #[test]
    fn delsp_joins_japanese_without_spaces() {
        let text =
            "お送りいただいたログを確認しま \nした。\r\n管理画面から再起動を \nお試しください。";
        assert_eq!(
            decode(text, true),
            "お送りいただいたログを確認しました。\n管理画面から再起動をお試しください。"
        );
    }

    #[test]
    fn space_stuffing_is_removed() {
        let text = " From the log: \n  indented\n >not a quote\nplain\n";
        assert_eq!(
            decode(text, false),
            "From the log:  indented\n>not a quote\nplain\n"
        );
    }

    #[test]
    fn quotes_keep_their_depth() {
        let text = "> quoted \n> line\n>> deeper \n>> too\n>\n> > not nested in RFC 3676\n";
        assert_eq!(
            decode(text, false),
            "> quoted line\n>> deeper too\n>\n> > not nested in RFC 3676\n"
        );
        // A flowed line followed by another depth ends its paragraph.
        assert_eq!(decode("> a \nb\n", false), "> a\nb\n");
        assert_eq!(decode("a \n> b\n", true), "a\n> b\n");
    }

    #[test]
    fn signature_separator_is_not_flowed() {
        let text = "Regards, \n-- \nHanako \nYamada\n";
        assert_eq!(decode(text, false), "Regards,\n-- \nHanako Yamada\n");
        assert_eq!(decode("-- \n", true), "-- \n");
    }

    #[test]
    fn flowed_last_line_and_empty_input() {
        assert_eq!(decode("end \n", false), "end\n");
        assert_eq!(decode("", false), "");
        assert_eq!(decode("\n\n", false), "\n\n");
        assert_eq!(decode("a\nb", false), "a\nb");
    }
}
