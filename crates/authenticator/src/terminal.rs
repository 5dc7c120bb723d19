//! The terminal side of the app: text from a server made safe to print, and PINs read
//! without echo.
//!
//! A server is whoever an activation link names, so everything it sends is treated as
//! hostile when printed: control characters (with whole ANSI escape sequences), bidi
//! overrides and isolates, zero-width and line or paragraph separators are dropped, so a
//! server cannot move the cursor, clear the screen, recolour or reorder text to draw a fake
//! prompt.

/// Longest text printed from one field a server sent.
pub const MAX_PRINTED_CHARS: usize = 200;

/// Characters that are not controls in Rust's sense but reorder or hide text, or break lines.
fn invisible_or_reordering(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `text` without control characters, escape sequences, bidi controls and separators, cut to
/// [`MAX_PRINTED_CHARS`].
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_PRINTED_CHARS * 4));
    let mut chars = text.chars().peekable();
    let mut kept = 0;
    while let Some(c) = chars.next() {
        match c {
            // ESC: drop the whole sequence it starts (CSI, OSC and other strings, or one char).
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() || invisible_or_reordering(c) => {}
            c => {
                if kept == MAX_PRINTED_CHARS {
                    out.push('…');
                    break;
                }
                out.push(c);
                kept += 1;
            }
        }
    }
    out
}

/// Skips a control sequence's parameters up to and including its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Skips an OSC, DCS or similar string up to its terminator (BEL or ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(unix)]
type Saved = rustix::termios::Termios;
#[cfg(not(unix))]
type Saved = ();

/// Turns the terminal's echo off while it lives (the typed PIN is not shown); restores it when
/// dropped. Nothing happens when standard input is not a terminal (a script pipes the PIN in).
pub struct EchoOff {
    saved: Option<Saved>,
}

impl EchoOff {
    pub fn on_stdin() -> EchoOff {
        EchoOff {
            saved: quiet_stdin(),
        }
    }

    /// Whether input is being read from a terminal with echo off.
    pub fn active(&self) -> bool {
        self.saved.is_some()
    }
}

/// Turns echo off on standard input if it is a terminal; returns the settings to restore.
#[cfg(unix)]
fn quiet_stdin() -> Option<Saved> {
    use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !isatty(&stdin) {
        return None;
    }
    let saved = tcgetattr(&stdin).ok()?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // The Enter key still moves to the next line.
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).ok()?;
    Some(saved)
}

#[cfg(not(unix))]
fn quiet_stdin() -> Option<Saved> {
    None
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_bidi_controls_and_separators_are_dropped() {
        assert_eq!(
            printable("\u{1b}[2J\u{1b}[1;1HContoso\u{1b}[31m VPN\u{1b}[0m"),
            "Contoso VPN"
        );
        assert_eq!(printable("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(printable("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(printable("evil\u{202E}gpj.exe"), "evilgpj.exe");
        assert_eq!(printable("line\u{2028}two\nthree\r"), "linetwothree");
        assert_eq!(printable("\u{9b}31mred"), "red");
        assert_eq!(printable("Zürich, Schweiz"), "Zürich, Schweiz");
        assert_eq!(printable(&"x".repeat(1000)).chars().count(), 201);
    }
}
