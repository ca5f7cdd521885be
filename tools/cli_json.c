/* JSON for the commands' --json output, on cJSON's public API (the
 * library's Python-style writer is internal to it). */
#include <stdio.h>

#include "cli.h"

void vp_cli_json_set(cJSON *obj, const char *key, cJSON *val)
{
    if (!obj || !val) { cJSON_Delete(val); return; }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, val);
}

void vp_cli_json_print(const cJSON *j)
{
    char *text = j ? cJSON_Print(j) : NULL;
    if (text) { fputs(text, stdout); fputc('\n', stdout); }
    cJSON_free(text);
}
