package volumes

// ldmRole says which LDM piece a partition is.
type ldmRole int

const (
	ldmOnMBR       ldmRole = iota // an MBR type 0x42 partition: PRIVHEAD in disk sector 6
	ldmGPTMetadata                // GPT "LDM metadata": PRIVHEAD in its last sector
	ldmGPTData                    // GPT "LDM data": volumes live here
)

type ldmCandidate struct {
	disk int
	d    Disk
	v    *Volume
	role ldmRole
}

func (s *Set) noteLDM(i int, d Disk, v *Volume, role ldmRole) {
	s.ldm = append(s.ldm, ldmCandidate{disk: i, d: d, v: v, role: role})
}

func (s *Set) assembleLDM() {}
