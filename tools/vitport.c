/* vitport: the command-line program. Subcommands live in tools/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

static const struct { const char *name; int (*fn)(int, char **); const char *summary; } COMMANDS[] = {
    {"inspect", cmd_inspect, "show the format, structure and tensors of a checkpoint"},
    {"convert", cmd_convert, "convert a checkpoint to the Hugging Face layout"},
    {"run", cmd_run, "run a Hugging Face model directory on input arrays"},
    {"verify", cmd_verify, "check a converted model against its source checkpoint"},
    {"embed", cmd_embed, "image or text embeddings of a model directory"},
    {"classify", cmd_classify, "zero-shot (CLIP, SigLIP) or ImageNet-style (ViT, DeiT) classes of images"},
    {"segment", cmd_segment, "CLIPSeg heat maps of text prompts on an image, as PNG"},
    {"preprocess", cmd_preprocess, "the pixel_values a model directory makes of images"},
    {"tokenize", cmd_tokenize, "the input_ids a model directory makes of texts"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vitport COMMAND [ARGS]\n"
            "\n"
            "Read vision-transformer checkpoints in their release formats (torch .pth/.pt\n"
            "zip, legacy and TorchScript archives; NumPy .npy/.npz; safetensors) safely,\n"
            "without executing any pickled code, and convert them to the Hugging Face layout.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f,
            "\n"
            "options:\n"
            "  -h, --help     show this help (vitport COMMAND --help for a command's)\n"
            "  --version      print the version\n"
            "\n"
            "exit status: 0 ok, 1 bad input or failed check, 2 usage error\n");
}

const char *vp_cli_bytes(double n, char *buf, unsigned len)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (n >= 1000 && i < 4) { n /= 1000; i++; }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", n, u[i]);
    return buf;
}

const char *vp_cli_printable(const char *s, char *buf, size_t len)
{
    const char *c = s;
    while (*c && (unsigned char)*c >= 0x20 && *c != 0x7f) c++;
    if (!*c || len < 8) return s;   /* nothing to escape: s itself */
    size_t o = 0;
    for (c = s; *c && o + 8 < len; c++) {
        unsigned char b = (unsigned char)*c;
        if (b < 0x20 || b == 0x7f) o += (size_t)snprintf(buf + o, len - o, "\\x%02x", b);
        else buf[o++] = (char)b;
    }
    if (*c) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o] = 0;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return VP_EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return VP_EXIT_OK; }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) { printf("vitport %s\n", vp_version()); return VP_EXIT_OK; }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(cmd, COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vitport: unknown command '%s' (see vitport --help)\n", cmd);
    return VP_EXIT_USAGE;
}
