"""The README's own commands, for the deploy tests to run: the shell block of a **Title.**
paragraph of the `## Deploy` section, one command per line (backslash continuations
joined, comments and `sudo ` dropped: the tests run as root), and the inline
`docker compose ...` commands of a paragraph."""

import os
import re


def _deploy_section(source):
    with open(os.path.join(source, "README.md")) as f:
        text = f.read()
    start = text.index("\n## Deploy\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def _paragraph(source, title):
    section = _deploy_section(source)
    start = section.index(f"\n**{title}")
    end = section.find("\n**", start + 1)
    return section[start:end if end != -1 else len(section)]


def shell_block(source, title):
    """Commands of the first ```sh block in the paragraph that starts with **title."""
    para = _paragraph(source, title)
    block = re.search(r"```sh\n(.*?)```", para, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("sudo "):
            line = line[len("sudo "):]
        if line:
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def inline_commands(source, title, prefix):
    """The `...` spans of the paragraph that start with prefix."""
    para = _paragraph(source, title).replace("\n", " ")
    return [c for c in re.findall(r"`([^`]+)`", para) if c.startswith(prefix)]
