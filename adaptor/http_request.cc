#include "adaptor/http_request.h"

namespace pp::adaptor {

namespace {

using Status = HttpRequestHead::Status;

// tchar (RFC 9110 section 5.6.2).
bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// Visible ASCII: what a request-target is made of (RFC 3986 characters, and more we just pass on).
bool IsVisible(std::string_view s) {
  for (const unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return !s.empty();
}

// A line without its terminator: CRLF or a bare LF. A CR anywhere else makes the head bad.
bool StripCr(std::string_view& line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line.find('\r') == std::string_view::npos;
}

// The path of a request-target: origin-form "/p?q" or absolute-form "http://authority/p?q".
bool TargetPath(std::string_view target, std::string& path) {
  if (target.front() != '/') {
    const std::size_t scheme = target.find("://");
    if (scheme == std::string_view::npos)
      return false;  // authority-form and asterisk-form: not for us
    const std::string_view after = target.substr(scheme + 3);
    const std::size_t slash = after.find_first_of("/?");
    target = slash == std::string_view::npos || after[slash] == '?' ? std::string_view("/")
                                                                    : after.substr(slash);
  }
  path.assign(target.substr(0, target.find_first_of("?#")));
  return true;
}

HttpRequestHead Bad() {
  HttpRequestHead head;
  head.status = Status::kBad;
  return head;
}

}  // namespace

HttpRequestHead ParseHttpRequestHead(std::string_view bytes, std::size_t max_head) {
  HttpRequestHead head;
  const std::string_view window = bytes.substr(0, max_head);
  std::size_t pos = 0;
  // Empty lines before the request-line.
  while (pos < window.size() && (window[pos] == '\n' || window[pos] == '\r')) {
    if (window[pos] == '\r' && pos + 1 < window.size() && window[pos + 1] != '\n') return Bad();
    ++pos;
  }
  bool request_line = true;
  for (;;) {
    const std::size_t eol = window.find('\n', pos);
    if (eol == std::string_view::npos) {
      head.status = bytes.size() >= max_head ? Status::kTooLarge : Status::kIncomplete;
      head.method.clear();
      head.path.clear();
      return head;
    }
    std::string_view line = window.substr(pos, eol - pos);
    pos = eol + 1;
    if (!StripCr(line)) return Bad();
    if (request_line) {
      request_line = false;
      const std::size_t sp1 = line.find(' ');
      const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos) return Bad();
      const std::string_view method = line.substr(0, sp1);
      const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string_view version = line.substr(sp2 + 1);
      if (!IsToken(method) || !IsVisible(target)) return Bad();
      if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
          version[7] > '9') {
        return Bad();
      }
      if (!TargetPath(target, head.path)) return Bad();
      head.method.assign(method);
      continue;
    }
    if (line.empty()) {
      head.status = Status::kComplete;
      head.head_size = pos;
      return head;
    }
    // field-line = field-name ":" OWS field-value OWS; no whitespace before the colon, no
    // obsolete line folding (RFC 9112 sections 5.1 and 5.2).
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) return Bad();
    for (const unsigned char c : line.substr(colon + 1)) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return Bad();  // obs-text (0x80 and up) is allowed
    }
  }
}

}  // namespace pp::adaptor
