#include "common/podvm/user_data.h"

#include <gtest/gtest.h>

#include <string>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

UserData MustParse(const std::string& text) {
  UserData out;
  std::string error;
  EXPECT_TRUE(ParseUserData(text, out, error)) << error << "\n" << text;
  return out;
}

std::string MustFail(const std::string& text) {
  UserData out;
  std::string error;
  EXPECT_FALSE(ParseUserData(text, out, error)) << text;
  return error;
}

std::string Decoded(const WriteFile& file) {
  std::string out;
  std::string error;
  EXPECT_TRUE(DecodeContent(file, 1 << 20, out, error)) << error;
  return out;
}

// The shape of CAA's cloud-init template.
TEST(UserDataTest, ParsesCaaStyleDocument) {
  const UserData data = MustParse(R"(#cloud-config

write_files:
  - path: /run/peerpod/apf.json
    content: |
      {"pod-name": "nginx"}
  - path: /run/peerpod/initdata
    owner: root:root
    permissions: '0600'
    content: H4sIAAAAAAAA/w==
)");
  ASSERT_EQ(data.write_files.size(), 2u);
  EXPECT_EQ(data.write_files[0].path, "/run/peerpod/apf.json");
  EXPECT_EQ(data.write_files[0].content, "{\"pod-name\": \"nginx\"}\n");
  EXPECT_EQ(data.write_files[0].encoding, ContentEncoding::kPlain);
  EXPECT_EQ(data.write_files[1].owner, "root:root");
  EXPECT_EQ(data.write_files[1].permissions, "0600");
  EXPECT_EQ(data.write_files[1].content, "H4sIAAAAAAAA/w==");
  EXPECT_TRUE(data.notes.empty());
}

TEST(UserDataTest, HeaderOnlyAndEmptyListsHaveNoFiles) {
  EXPECT_TRUE(MustParse("#cloud-config\n").write_files.empty());
  EXPECT_TRUE(MustParse("#cloud-config\r\nwrite_files: []\r\n").write_files.empty());
  EXPECT_TRUE(MustParse("#cloud-config\nwrite_files:\n").write_files.empty());
}

TEST(UserDataTest, OtherCloudInitKeysAreNoted) {
  const UserData data = MustParse(
      "#cloud-config\nruncmd: [reboot]\nwrite_files:\n- path: /a\n  defer: true\n  x: 1\n");
  ASSERT_EQ(data.notes.size(), 3u);
  EXPECT_NE(data.notes[0].find("runcmd"), std::string::npos);
  EXPECT_NE(data.notes[1].find("defer"), std::string::npos);
  EXPECT_NE(data.notes[2].find("write_files[0].x"), std::string::npos);
}

TEST(UserDataTest, DecodesEveryCloudInitEncodingName) {
  const std::string b64 = Base64Encode("hello\n");
  const std::string gz = Base64Encode(GzipCompress("hello\n"));
  for (const char* name : {"b64", "base64", "B64", " base64 "}) {
    const auto data = MustParse("#cloud-config\nwrite_files:\n- path: /a\n  encoding: '" +
                                std::string(name) + "'\n  content: " + b64 + "\n");
    EXPECT_EQ(data.write_files[0].encoding, ContentEncoding::kBase64) << name;
    EXPECT_EQ(Decoded(data.write_files[0]), "hello\n");
  }
  for (const char* name : {"gz+b64", "gzip+base64", "gz+base64", "gzip+b64"}) {
    const auto data =
        MustParse("#cloud-config\nwrite_files:\n- path: /a\n  encoding: " + std::string(name) +
                  "\n  content: " + gz + "\n");
    EXPECT_EQ(data.write_files[0].encoding, ContentEncoding::kGzipBase64) << name;
    EXPECT_EQ(Decoded(data.write_files[0]), "hello\n");
  }
  const auto plain =
      MustParse("#cloud-config\nwrite_files:\n- path: /a\n  encoding: text/plain\n  content: x\n");
  EXPECT_EQ(plain.write_files[0].encoding, ContentEncoding::kPlain);
}

TEST(UserDataTest, BinaryTagMeansBase64) {
  const auto data = MustParse(
      "#cloud-config\nwrite_files:\n- path: /a\n  content: !!binary aGVsbG8=\n"
      "- path: /b\n  encoding: gzip\n  content: !!binary " +
      Base64Encode(GzipCompress("zip")) + "\n");
  EXPECT_EQ(Decoded(data.write_files[0]), "hello");
  EXPECT_EQ(Decoded(data.write_files[1]), "zip");
}

TEST(UserDataTest, NullAndMissingContentIsEmpty) {
  const auto data = MustParse(
      "#cloud-config\nwrite_files:\n- path: /a\n- path: /b\n  content: ~\n- path: /c\n  content: "
      "'null'\n");
  EXPECT_EQ(data.write_files[0].content, "");
  EXPECT_EQ(data.write_files[1].content, "");
  EXPECT_EQ(data.write_files[2].content, "null");
}

TEST(UserDataTest, AppendIsAYamlBoolean) {
  const auto data = MustParse(
      "#cloud-config\nwrite_files:\n- path: /a\n  append: yes\n- path: /b\n  append: false\n");
  EXPECT_TRUE(data.write_files[0].append);
  EXPECT_FALSE(data.write_files[1].append);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  append: maybe\n")
                .find("write_files[0].append"),
            std::string::npos);
}

TEST(UserDataTest, RefusesMissingHeader) {
  EXPECT_NE(MustFail("write_files: []\n").find("#cloud-config"), std::string::npos);
  EXPECT_NE(MustFail("#!/bin/sh\necho hi\n").find("#cloud-config"), std::string::npos);
  EXPECT_NE(MustFail("").find("#cloud-config"), std::string::npos);
}

TEST(UserDataTest, RefusesMalformedYaml) {
  EXPECT_NE(
      MustFail("#cloud-config\nwrite_files:\n- path: /a\n content: [\n").find("malformed YAML"),
      std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files: x: y\n").find("malformed YAML"),
            std::string::npos);
  EXPECT_NE(
      MustFail("#cloud-config\nwrite_files:\n  - path: /a\n - path: /b\n").find("malformed YAML"),
      std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: \"\\q\"\n").find("malformed YAML"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\na: *nowhere\n").find("malformed YAML"), std::string::npos);
  // yaml-cpp 0.7's LoadAll never returns on this one (yaml-cpp issue #1040); we must.
  EXPECT_NE(MustFail("#cloud-config\n,write_files:\n  - a\n").find("not a single YAML document"),
            std::string::npos);
}

TEST(UserDataTest, RefusesWrongShapes) {
  EXPECT_NE(MustFail("#cloud-config\n- a\n- b\n").find("must be a mapping"), std::string::npos);
  EXPECT_NE(
      MustFail("#cloud-config\nwrite_files: {path: /a}\n").find("write_files: must be a list"),
      std::string::npos);
  EXPECT_NE(
      MustFail("#cloud-config\nwrite_files: [/a]\n").find("write_files[0]: must be a mapping"),
      std::string::npos);
  EXPECT_NE(
      MustFail("#cloud-config\nwrite_files:\n- content: x\n").find("write_files[0]: has no path"),
      std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: ''\n").find("has no path"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  content: [1, 2]\n")
                .find("write_files[0].content: must be a single value"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: {a: b}\n").find("write_files[0].path"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files: []\n---\nwrite_files: []\n")
                .find("not a single YAML document"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files: []\nwrite_files: []\n").find("appears twice"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  path: /b\n")
                .find("write_files[0].path: appears twice"),
            std::string::npos);
}

TEST(UserDataTest, RefusesUnknownAndUnsupportedEncodings) {
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  encoding: base46\n  content: x\n")
                .find("unknown encoding"),
            std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  encoding: gzip\n  content: x\n")
                .find("use gz+b64"),
            std::string::npos);
  EXPECT_NE(
      MustFail(
          "#cloud-config\nwrite_files:\n- path: /a\n  encoding: b64\n  content: !!binary aGk=\n")
          .find("twice"),
      std::string::npos);
  EXPECT_NE(MustFail("#cloud-config\nwrite_files:\n- path: /a\n  source: {uri: 'http://x'}\n")
                .find("not supported"),
            std::string::npos);
}

TEST(UserDataTest, RefusesBadPermissionStrings) {
  for (const char* bad : {"rw-------", "0800", "12", "06000", "0x600", "-600", "0o"}) {
    const std::string error = MustFail("#cloud-config\nwrite_files:\n- path: /a\n  permissions: '" +
                                       std::string(bad) + "'\n");
    EXPECT_NE(error.find("write_files[0].permissions"), std::string::npos) << bad << ": " << error;
  }
  unsigned mode = 0;
  std::string error;
  for (const auto& [text, want] : std::vector<std::pair<std::string, unsigned>>{
           {"600", 0600}, {"0600", 0600}, {"0o644", 0644}, {"7777", 07777}, {"0755", 0755}}) {
    EXPECT_TRUE(ParsePermissions(text, mode, error)) << text;
    EXPECT_EQ(mode, want) << text;
  }
}

TEST(UserDataTest, RefusesBadContentOnDecode) {
  const auto data = MustParse(
      "#cloud-config\nwrite_files:\n- path: /a\n  encoding: b64\n  content: '@@@@'\n"
      "- path: /b\n  encoding: gz+b64\n  content: aGVsbG8=\n- path: /c\n  content: 12345\n");
  std::string out;
  std::string error;
  EXPECT_FALSE(DecodeContent(data.write_files[0], 100, out, error));
  EXPECT_NE(error.find("base64"), std::string::npos);
  EXPECT_FALSE(DecodeContent(data.write_files[1], 100, out, error));
  EXPECT_NE(error.find("gzip"), std::string::npos);
  EXPECT_FALSE(DecodeContent(data.write_files[2], 4, out, error));
  EXPECT_NE(error.find("limit"), std::string::npos);
}

TEST(UserDataTest, RefusesOversizedInputAndTooManyEntries) {
  const std::string big = "#cloud-config\n#" + std::string(kMaxUserDataBytes, 'x') + "\n";
  EXPECT_NE(MustFail(big).find("more than the limit"), std::string::npos);
  std::string many = "#cloud-config\nwrite_files:\n";
  for (std::size_t i = 0; i <= kMaxWriteFiles; ++i) many += "- path: /a" + std::to_string(i) + "\n";
  EXPECT_NE(MustFail(many).find("more than the limit of 64"), std::string::npos);
}

TEST(UserDataTest, AliasesCannotMultiplyContent) {
  std::string doc =
      "#cloud-config\nbig: &big '" + std::string(600 * 1024, 'x') + "'\nwrite_files:\n";
  for (int i = 0; i < 4; ++i) doc += "- {path: /a, content: *big}\n";
  EXPECT_NE(MustFail(doc).find("add up to more than"), std::string::npos);
}

TEST(UserDataTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "#cloud-config\nx: " + std::string(100000, '[') + "\n";
  EXPECT_NE(MustFail(deep).find("malformed YAML"), std::string::npos);
}

// Render -> parse -> decode gives back every field, for content of every shape.
TEST(UserDataRenderTest, RoundTripsEveryKindOfContent) {
  const std::vector<std::string> contents = {
      "{\"pod-name\": \"nginx\"}\n",  // literal block, clip
      "no final newline",             // literal block, strip
      "",                             // empty
      "two\nfinal newlines\n\n",      // quoted
      "  leading spaces\n",           // quoted
      "\nleading newline",            // quoted
      "trailing space \nx",           // quoted
      "tab\there\n",                  // quoted
      "crlf\r\nline\r\n",             // quoted
      "quotes \" and \\ backslash: #not a comment\n- not a list\n---\n...\n",
      "unicode: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xe2\x80\xa8\n",
      std::string("nul\0byte", 8),
      std::string("\x00\xff\xfe binary \x80", 12),  // not UTF-8: becomes b64
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      "key: value\n  indented: more\n\nafter blank line\n",
  };
  std::vector<WriteFile> files;
  for (std::size_t i = 0; i < contents.size(); ++i) {
    WriteFile file;
    file.path = "/run/peerpod/file" + std::to_string(i);
    file.content = contents[i];
    file.permissions = i % 2 ? "0600" : "";
    file.owner = i % 3 ? "root:root" : "";
    file.append = i == 4;
    files.push_back(file);
  }
  WriteFile gz;
  gz.path = "/run/peerpod/initdata";
  gz.encoding = ContentEncoding::kGzipBase64;
  gz.content = Base64Encode(GzipCompress("version = \"0.1.0\"\n"));
  files.push_back(gz);

  const std::string rendered = RenderUserData(files);
  const UserData parsed = MustParse(rendered);
  ASSERT_EQ(parsed.write_files.size(), files.size()) << rendered;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const WriteFile& got = parsed.write_files[i];
    EXPECT_EQ(got.path, files[i].path);
    EXPECT_EQ(got.owner, files[i].owner);
    EXPECT_EQ(got.permissions, files[i].permissions);
    EXPECT_EQ(got.append, files[i].append);
    EXPECT_EQ(Decoded(got), Decoded(files[i])) << "entry " << i << "\n" << rendered;
  }
  EXPECT_TRUE(parsed.notes.empty());
  // Readable where it can be: the JSON and the certificate are literal blocks.
  EXPECT_NE(rendered.find("    content: |\n      {\"pod-name\": \"nginx\"}\n"), std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("      -----BEGIN CERTIFICATE-----\n"), std::string::npos);
  EXPECT_NE(rendered.find("encoding: b64"), std::string::npos) << "non-UTF-8 content is base64";
  EXPECT_EQ(parsed.write_files[12].encoding, ContentEncoding::kBase64);
}

TEST(UserDataRenderTest, EmptyListAndExactText) {
  EXPECT_EQ(RenderUserData({}), "#cloud-config\nwrite_files: []\n");
  WriteFile file;
  file.path = "/run/peerpod/apf.json";
  file.permissions = "0600";
  file.content = "{}\n";
  EXPECT_EQ(RenderUserData({file}),
            "#cloud-config\nwrite_files:\n  - path: \"/run/peerpod/apf.json\"\n    permissions: "
            "\"0600\"\n"
            "    content: |\n      {}\n");
}

TEST(UserDataRenderTest, PathsWithOddCharactersStayExact) {
  WriteFile file;
  file.path = "/run/peerpod/../x: \"y\"\n#z \xe2\x82\xac";
  const UserData parsed = MustParse(RenderUserData({file}));
  ASSERT_EQ(parsed.write_files.size(), 1u);
  EXPECT_EQ(parsed.write_files[0].path, file.path);
}

}  // namespace
}  // namespace pp::podvm
