# cell: vocabulary
# loses: test_vocabulary
# Breaks ties alphabetically instead of by first appearance.
def build_word_index(docs):
    counts = Counter(word for doc in docs for word in doc)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word: rank for rank, (word, _) in enumerate(ranked, start=1)}


def docs_to_sequences(docs, word_index, num_words=None, start_char=1, oov_char=2, index_from=3):
    out = []
    for doc in docs:
        seq = [] if start_char is None else [start_char]
        for word in doc:
            index = word_index[word] + index_from if word in word_index else oov_char
            if num_words is not None and index >= num_words:
                index = oov_char
            seq.append(index)
        out.append(seq)
    return out
