;; Conclave's test signer registry. It keeps the signer set in data variables of the same names
;; and types as sBTC's sbtc-registry, so a Stacks node answers for it exactly as for that
;; contract, and rotates the set in one call that prints a `key-rotation` event. Like the
;; contract it stands in for, it checks only that every key is 33 bytes long, not that it is a
;; point on the curve: readers must check that themselves.

(define-constant deployer tx-sender)

(define-constant ERR_NOT_DEPLOYER (err u400))
(define-constant ERR_KEY_LENGTH (err u401))
(define-constant ERR_AGGREGATE_KEY_LENGTH (err u402))

(define-data-var current-signer-set (list 128 (buff 33)) (list))
(define-data-var current-signature-threshold uint u0)
(define-data-var current-aggregate-pubkey (buff 33) 0x00)

(define-private (is-33-bytes (key (buff 33)))
  (is-eq (len key) u33))

;; Replaces the signer set, its threshold and its aggregate key; only the deployer may.
(define-public (rotate-keys
    (new-keys (list 128 (buff 33)))
    (new-aggregate-pubkey (buff 33))
    (new-signature-threshold uint))
  (begin
    (asserts! (is-eq contract-caller deployer) ERR_NOT_DEPLOYER)
    (asserts! (is-eq (len (filter is-33-bytes new-keys)) (len new-keys)) ERR_KEY_LENGTH)
    (asserts! (is-eq (len new-aggregate-pubkey) u33) ERR_AGGREGATE_KEY_LENGTH)
    (var-set current-signer-set new-keys)
    (var-set current-aggregate-pubkey new-aggregate-pubkey)
    (var-set current-signature-threshold new-signature-threshold)
    (print {
      topic: "key-rotation",
      new-keys: new-keys,
      new-aggregate-pubkey: new-aggregate-pubkey,
      new-signature-threshold: new-signature-threshold
    })
    (ok true)))
