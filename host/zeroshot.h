/* zeroshot.h: CLIP zero-shot classification pieces: class lists (`id,name`
 * CSV), prompt templates, class embeddings (templates averaged, cached on
 * disk), video embeddings (frame embeddings averaged) and class
 * probabilities (softmax of exp(logit_scale) * cosine). */
#ifndef STACL_ZEROSHOT_H
#define STACL_ZEROSHOT_H

#include <stddef.h>

#include "stacl.h"

/* A list of malloc'd strings. */
typedef struct stacl_names {
    char **v;
    int n;
} stacl_names;

void stacl_names_free(stacl_names *names);

/* Reads an `id,name` CSV (header line "id,name"; names may be quoted and
 * contain commas). names->v[id] is the class with that id: ids must be
 * 0..n-1, each once. */
stacl_status stacl_class_names_load(const char *path, stacl_names *names);

/* Templates, one per line with "{}" for the class name; NULL path: the
 * default, "a video of a {}.". */
stacl_status stacl_templates_load(const char *path, stacl_names *templates);

/* Class descriptions `{"class index": [sentences]}` (JSON) for n_classes
 * classes: (*per_class)[k] holds class k's sentences (non-strings skipped;
 * every class needs at least one). Free with stacl_descriptions_free. */
stacl_status stacl_descriptions_load(const char *path, int n_classes, stacl_names **per_class);
void stacl_descriptions_free(stacl_names *per_class, int n_classes);

/* Scales x[0..n) to unit L2 norm (left as is when it is all zeros). */
void stacl_l2_normalize(float *x, size_t n);

/* Class embeddings [classes->n, dim]: for each class, the text embedding
 * of every prompt L2-normalized, averaged over prompts and normalized
 * again. The prompts are the templates with the name filled in, or, when
 * descriptions is not NULL, class k's sentences descriptions[k]. Cached in cache_dir (NULL: no cache),
 * keyed by the model file (path, size, time), the vocabulary, the class
 * names and the templates; *from_cache tells whether the cache answered.
 * A prompt longer than the context is truncated (ending in <|endoftext|>).
 * *out is malloc'd. */
stacl_status stacl_zs_class_embeddings(stacl_model *model, stacl_tokenizer *tok, const stacl_names *classes,
                                       const stacl_names *templates, const stacl_names *descriptions,
                                       const char *vocab_path, const char *cache_dir,
                                       float **out, int *dim, int *from_cache);

/* Video embedding [dim] from frame embeddings [frames, dim]: each frame
 * L2-normalized, averaged, normalized again. */
void stacl_zs_video_embedding(const float *frames, int n_frames, int dim, float *out);

/* probs[c] = softmax_c(scale * <video, class_c>) for normalized vectors. */
void stacl_zs_probabilities(const float *video, const float *classes, int n_classes, int dim, float scale,
                            float *probs);

/* The cache folder: $STACL_CACHE_DIR, else $XDG_CACHE_HOME/stacl, else
 * ~/.cache/stacl; 0 when caching is off (STACL_CACHE_DIR empty) or there is
 * no such folder. */
int stacl_zs_cache_dir(char *dir, size_t cap);

#endif
