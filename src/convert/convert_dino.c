/*
 * DINO (seed 003): the timm ViT mapping as a base model (ViTModel without
 * pooler). Takes the torch hub backbones (a plain VisionTransformer state
 * dict, ViT-S/B at patch 8 and 16) and full training checkpoints: there the
 * networks sit under 'student' (DistributedDataParallel: "module.") and
 * 'teacher', each a MultiCropWrapper ("backbone." + the DINO projection
 * "head."); the converter picks 'teacher' unless --key says otherwise, the
 * prefixes are stripped and the projection head is dropped by a named rule.
 */
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"

/* Longest first, so "module.backbone." wins over "module.". */
static const char *const PREFIXES[] = {"module.backbone.", "backbone.", "module.", ""};

static const char *backbone_prefix(const vp_table *tb, int *score)
{
    for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0]; i++) {
        int s = vp_vit_detect_prefix(tb, PREFIXES[i]);
        if (s) { *score = s; return PREFIXES[i]; }
    }
    *score = 0;
    return NULL;
}

/* "module." or "" : where the MultiCropWrapper's head sits. */
static void wrapper_prefix(const char *pre, char *out, size_t len)
{
    size_t n = strlen(pre);
    static const char bb[] = "backbone.";
    if (n >= sizeof bb - 1 && !strcmp(pre + n - (sizeof bb - 1), bb)) n -= sizeof bb - 1;
    snprintf(out, len, "%.*s", (int)n, pre);
}

static bool has_dino_head(const vp_table *tb, const char *wrap)
{
    char a[128], b[128];
    snprintf(a, sizeof a, "%shead.last_layer.weight_v", wrap);
    snprintf(b, sizeof b, "%shead.last_layer.weight", wrap);
    return vp_table_find(tb, a) >= 0 || vp_table_find(tb, b) >= 0;
}

static int detect_dino(const vp_table *tb)
{
    int s;
    const char *pre = backbone_prefix(tb, &s);
    if (!pre) return 0;
    char wrap[32];
    wrapper_prefix(pre, wrap, sizeof wrap);
    if (has_dino_head(tb, wrap)) return 30;
    if (strstr(pre, "backbone.")) return 25;
    /* a plain (or DDP "module.") backbone is a timm ViT too: DINO only by
     * --model-name dino_* or --family dino */
    return 2;
}

static int build_dino(vp_plan *p)
{
    int s;
    const char *pre = backbone_prefix(&p->table, &s);
    if (!pre) return vp_plan_fail(p, VP_ERR_FORMAT, "no DINO ViT backbone (blocks.N with a patch embedding) found");
    char wrap[32], head[64];
    wrapper_prefix(pre, wrap, sizeof wrap);
    if (*pre) vp_plan_note(p, "DINO backbone under '%s'", pre);
    /* DINOHead: mlp.* (Linear, optional BatchNorm) and the weight-normed last_layer */
    static const char rule[] = "DINO projection head (training only, not in the backbone)";
    snprintf(head, sizeof head, "%shead.mlp.", wrap);
    size_t n = vp_plan_drop_prefix(p, head, rule);
    snprintf(head, sizeof head, "%shead.last_layer.", wrap);
    n += vp_plan_drop_prefix(p, head, rule);
    if (n) vp_plan_note(p, "dropping the DINO projection head (%zu tensors)", n);
    return vp_vit_build(p, pre, 1);
}

static const char *const DINO_KEYS[] = {"teacher", NULL};
static const char *const DINO_NAMES[] = {"dino", NULL};

const vp_family vp_family_dino = {
    .name = "dino",
    .summary = "DINO ViT (hub backbone or training teacher/student) -> ViTModel",
    .detect = detect_dino,
    .build = build_dino,
    .prefer_keys = DINO_KEYS,
    .name_prefixes = DINO_NAMES,
};
